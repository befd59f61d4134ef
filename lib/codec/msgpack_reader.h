// A strict, bounds-checked reader for the MessagePack subset of Lighthouse's
// records. msgpack-cxx's unpacker builds a tree of objects in a zone before
// anything can be read; a stored record has a fixed layout, so reading it in
// one pass straight into the event is about three times faster. Encoding
// stays with msgpack-cxx.
#pragma once

#include <cstdint>
#include <string_view>

namespace lighthouse::codec {

class MsgpackReader {
 public:
  explicit MsgpackReader(std::string_view bytes) : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}

  bool done() const noexcept { return p_ == end_; }
  const char* position() const noexcept { return p_; }
  // Each returns false (consuming nothing useful) when the next value is not
  // of that kind or runs past the end.
  bool array(std::uint32_t& size) noexcept { return container(size, 0x90, 0xdc, 0xdd); }
  bool map(std::uint32_t& size) noexcept { return container(size, 0x80, 0xde, 0xdf); }
  bool nil() noexcept {
    if (p_ == end_ || static_cast<unsigned char>(*p_) != 0xc0) return false;
    ++p_;
    return true;
  }
  bool uint(std::uint64_t& value) noexcept {
    if (p_ == end_) return false;
    unsigned char tag = static_cast<unsigned char>(*p_);
    if (tag < 0x80) {
      value = tag;
      ++p_;
      return true;
    }
    int width = tag == 0xcc ? 1 : tag == 0xcd ? 2 : tag == 0xce ? 4 : tag == 0xcf ? 8 : 0;
    if (width == 0 || end_ - p_ < 1 + width) return false;
    value = be(p_ + 1, width);
    p_ += 1 + width;
    return true;
  }
  bool str(std::string_view& out) noexcept {
    if (p_ == end_) return false;
    unsigned char tag = static_cast<unsigned char>(*p_);
    if ((tag & 0xe0) == 0xa0) return body(1, tag & 0x1f, out);
    int width = tag == 0xd9 ? 1 : tag == 0xda ? 2 : tag == 0xdb ? 4 : 0;
    return width != 0 && sized(width, out);
  }
  bool bin(std::string_view& out) noexcept {
    if (p_ == end_) return false;
    unsigned char tag = static_cast<unsigned char>(*p_);
    int width = tag == 0xc4 ? 1 : tag == 0xc5 ? 2 : tag == 0xc6 ? 4 : 0;
    return width != 0 && sized(width, out);
  }

 private:
  static std::uint64_t be(const char* p, int width) noexcept {
    std::uint64_t v = 0;
    for (int i = 0; i < width; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
  }
  bool container(std::uint32_t& size, unsigned fix, unsigned tag16, unsigned tag32) noexcept {
    if (p_ == end_) return false;
    unsigned char tag = static_cast<unsigned char>(*p_);
    if ((tag & 0xf0) == fix) {
      size = tag & 0x0f;
      ++p_;
      return true;
    }
    int width = tag == tag16 ? 2 : tag == tag32 ? 4 : 0;
    if (width == 0 || end_ - p_ < 1 + width) return false;
    size = static_cast<std::uint32_t>(be(p_ + 1, width));
    p_ += 1 + width;
    // Every element takes at least one byte: a size past the end is damage.
    return size <= static_cast<std::uint64_t>(end_ - p_);
  }
  bool sized(int width, std::string_view& out) noexcept {
    if (end_ - p_ < 1 + width) return false;
    return body(1 + width, be(p_ + 1, width), out);
  }
  bool body(std::ptrdiff_t header, std::uint64_t size, std::string_view& out) noexcept {
    if (static_cast<std::uint64_t>(end_ - p_ - header) < size) return false;
    out = std::string_view(p_ + header, static_cast<std::size_t>(size));
    p_ += header + static_cast<std::ptrdiff_t>(size);
    return true;
  }

  const char* p_;
  const char* end_;
};

}  // namespace lighthouse::codec
