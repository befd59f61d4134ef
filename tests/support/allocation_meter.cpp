#include "support/allocation_meter.h"

#include <malloc.h>

#include <cstddef>
#include <cstdlib>
#include <new>

namespace {

// Plain data, so that it needs no dynamic initialisation on any thread.
struct Meter {
  bool on;
  long long live;
  long long peak;
  long long count;
};
thread_local Meter meter{};

void* allocate(std::size_t n, std::size_t alignment, bool nothrow) {
  if (n == 0) n = 1;
  void* p = nullptr;
  if (alignment <= alignof(std::max_align_t)) {
    p = std::malloc(n);
  } else {
    // aligned_alloc wants a size that is a multiple of the alignment.
    p = std::aligned_alloc(alignment, (n + alignment - 1) / alignment * alignment);
  }
  if (p == nullptr) {
    if (nothrow) return nullptr;
    throw std::bad_alloc();
  }
  if (meter.on) {
    ++meter.count;
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

constexpr std::size_t kPlain = 0;

}  // namespace

// Every form of the global operator new and delete, so that a pointer is
// always freed by the allocator that made it (sanitizers check that).
void* operator new(std::size_t n) { return allocate(n, kPlain, false); }
void* operator new[](std::size_t n) { return allocate(n, kPlain, false); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return allocate(n, kPlain, true); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return allocate(n, kPlain, true); }
void* operator new(std::size_t n, std::align_val_t a) { return allocate(n, static_cast<std::size_t>(a), false); }
void* operator new[](std::size_t n, std::align_val_t a) { return allocate(n, static_cast<std::size_t>(a), false); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return allocate(n, static_cast<std::size_t>(a), true);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return allocate(n, static_cast<std::size_t>(a), true);
}
void operator delete(void* p) noexcept { release(p); }
void operator delete[](void* p) noexcept { release(p); }
void operator delete(void* p, std::size_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t) noexcept { release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { release(p); }
void operator delete(void* p, std::align_val_t) noexcept { release(p); }
void operator delete[](void* p, std::align_val_t) noexcept { release(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { release(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { release(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { release(p); }

namespace lighthouse::testing {

AllocationMeter::AllocationMeter() { meter = Meter{true, 0, 0, 0}; }
AllocationMeter::~AllocationMeter() { meter.on = false; }
std::size_t AllocationMeter::peak() const { return static_cast<std::size_t>(meter.peak); }
std::size_t AllocationMeter::allocations() const { return static_cast<std::size_t>(meter.count); }

}  // namespace lighthouse::testing
