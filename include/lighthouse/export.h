// Symbol visibility for the Lighthouse library. Everything is hidden by
// default (-fvisibility=hidden); only what carries LIGHTHOUSE_API is exported.
#pragma once

#if defined(LIGHTHOUSE_BUILDING_LIBRARY)
#define LIGHTHOUSE_API __attribute__((visibility("default")))
#else
#define LIGHTHOUSE_API
#endif
