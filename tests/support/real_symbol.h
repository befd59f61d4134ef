/* The real function behind an LD_PRELOAD wrapper, for the shims of
 * tests/fault/ and tests/crash/: DEFINE_REAL(write) defines real_write(),
 * which finds the next definition of write with dlsym(RTLD_NEXT) once;
 * REAL(write) calls through it. dlsym returns an object pointer, and ISO C
 * has no cast from it to a function pointer, so the bits are copied. */
#pragma once

#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#define DEFINE_REAL(name)                               \
  static __typeof__(&name) real_##name(void) {          \
    static __typeof__(&name) real;                      \
    if (real == NULL) {                                 \
      void *symbol = dlsym(RTLD_NEXT, #name);           \
      memcpy(&real, &symbol, sizeof real);              \
    }                                                   \
    return real;                                        \
  }
#define REAL(name) real_##name()

/* Declares `mode` as the mode argument of open(path, flags, ...), which is
 * passed only with O_CREAT or O_TMPFILE. */
#define OPEN_MODE(flags, mode)          \
  mode_t mode = 0;                      \
  if ((flags) & (O_CREAT | O_TMPFILE)) { \
    va_list ap;                         \
    va_start(ap, flags);                \
    mode = va_arg(ap, mode_t);          \
    va_end(ap);                         \
  }
