// glibc's allocator statistics and trimming, for the benchmarks' memory figures. Elsewhere
// (another C library, or glibc before 2.33) they read 0 and trim nothing.
#include <stddef.h>
#if defined(__linux__)
#include <malloc.h>
#endif

// Bytes the allocator has handed out and not had back (small chunks and mmapped ones).
static inline size_t cmalloc_bytes_in_use(void) {
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 33)
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
#else
    return 0;
#endif
}

// Returns freed pages to the system (malloc_trim(0)); 1 when some memory was released.
static inline int cmalloc_trim(void) {
#if defined(__GLIBC__)
    return malloc_trim(0);
#else
    return 0;
#endif
}
