// The fast check of record format 2, chosen by measurement: XXH3-64 (Debian's
// libxxhash 0.8, compiled inline) against a CRC32C written here (SSE4.2's
// crc32 instruction, and a portable table-driven fallback), over record
// sizes from 64 bytes to 64 KiB; SHA-256 (what `full` adds) for scale.
// The result is in docs/performance.md ("The fast check").
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <benchmark/benchmark.h>
#include <nmmintrin.h>
#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string>

namespace {

// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), one table.
std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}
const std::array<std::uint32_t, 256> kTable = make_table();

std::uint32_t crc32c_portable(const char* p, std::size_t n) {
  std::uint32_t c = ~0u;
  for (std::size_t i = 0; i < n; ++i) c = kTable[(c ^ static_cast<unsigned char>(p[i])) & 0xff] ^ (c >> 8);
  return ~c;
}

__attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42(const char* p, std::size_t n) {
  std::uint64_t c = ~0u;
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    c = _mm_crc32_u64(c, w);
  }
  std::uint32_t c32 = static_cast<std::uint32_t>(c);
  for (; n > 0; ++p, --n) c32 = _mm_crc32_u8(c32, static_cast<unsigned char>(*p));
  return ~c32;
}

std::string record(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 131 + 7);
  return s;
}

const char kKey[20] = "0123456789abcdefghi";

void BM_CheckXxh3(benchmark::State& state) {
  const std::string r = record(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    const XXH64_hash_t seed = XXH3_64bits(kKey, sizeof kKey);
    benchmark::DoNotOptimize(XXH3_64bits_withSeed(r.data(), r.size(), seed));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

// libxxhash's own runtime dispatch (xxh_x86dispatch.h: AVX2 or AVX-512
// where the CPU has them), declared here since XXH_INLINE_ALL renames the
// header's functions.
extern "C" XXH64_hash_t XXH3_64bits_withSeed_dispatch(const void* input, std::size_t len, XXH64_hash_t seed);

void BM_CheckXxh3Dispatch(benchmark::State& state) {
  const std::string r = record(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    const XXH64_hash_t seed = XXH3_64bits(kKey, sizeof kKey);
    benchmark::DoNotOptimize(XXH3_64bits_withSeed_dispatch(r.data(), r.size(), seed));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void BM_CheckCrc32cSse42(benchmark::State& state) {
  if (!__builtin_cpu_supports("sse4.2")) {
    state.SkipWithError("no SSE4.2 on this CPU");
    return;
  }
  const std::string r = record(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    const std::uint32_t seed = crc32c_sse42(kKey, sizeof kKey);
    benchmark::DoNotOptimize(seed ^ crc32c_sse42(r.data(), r.size()));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void BM_CheckCrc32cPortable(benchmark::State& state) {
  const std::string r = record(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    const std::uint32_t seed = crc32c_portable(kKey, sizeof kKey);
    benchmark::DoNotOptimize(seed ^ crc32c_portable(r.data(), r.size()));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void BM_CheckSha256(benchmark::State& state) {
  const std::string r = record(static_cast<std::size_t>(state.range(0)));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const EVP_MD* md = EVP_sha256();
  unsigned char out[32];
  for (auto _ : state) {
    EVP_DigestInit_ex(ctx, md, nullptr);
    EVP_DigestUpdate(ctx, r.data(), r.size());
    EVP_DigestFinal_ex(ctx, out, nullptr);
    benchmark::DoNotOptimize(out);
  }
  EVP_MD_CTX_free(ctx);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

}  // namespace

BENCHMARK(BM_CheckXxh3)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096)->Arg(65536);
BENCHMARK(BM_CheckXxh3Dispatch)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096)->Arg(65536);
BENCHMARK(BM_CheckCrc32cSse42)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096)->Arg(65536);
BENCHMARK(BM_CheckCrc32cPortable)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096)->Arg(65536);
BENCHMARK(BM_CheckSha256)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096)->Arg(65536);
BENCHMARK_MAIN();
