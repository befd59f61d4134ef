#include "support/allocation_meter.h"

#include <malloc.h>

#include <cstdlib>
#include <new>

namespace {

// Plain data, so that it needs no dynamic initialisation on any thread.
struct Meter {
  bool on;
  long long live;
  long long peak;
};
thread_local Meter meter{};

void* allocate(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  if (meter.on) {
    meter.live += static_cast<long long>(malloc_usable_size(p));
    if (meter.live > meter.peak) meter.peak = meter.live;
  }
  return p;
}

void release(void* p) noexcept {
  if (p == nullptr) return;
  if (meter.on) meter.live -= static_cast<long long>(malloc_usable_size(p));
  std::free(p);
}

}  // namespace

void* operator new(std::size_t n) { return allocate(n); }
void* operator new[](std::size_t n) { return allocate(n); }
void operator delete(void* p) noexcept { release(p); }
void operator delete[](void* p) noexcept { release(p); }
void operator delete(void* p, std::size_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t) noexcept { release(p); }

namespace lighthouse::testing {

AllocationMeter::AllocationMeter() { meter = Meter{true, 0, 0}; }
AllocationMeter::~AllocationMeter() { meter.on = false; }
std::size_t AllocationMeter::peak() const { return static_cast<std::size_t>(meter.peak); }

}  // namespace lighthouse::testing
