// Counts heap allocations of a whole process, for "allocations per round trip":
// run a workload at two sizes and divide the difference by the extra round trips.
//
//   cc -O2 -shared -fPIC -o libmalloc_counter.so malloc_counter.c -ldl
//   LD_PRELOAD=./libmalloc_counter.so program ...   # prints the count at exit
//
// With MALLOC_COUNTER_FILE=PATH the count also lives in the first 8 bytes of PATH, mapped shared,
// so another process (the bench runner) can read it while the program runs: the allocations of a
// measured window are the difference of two reads, with no need for the program to exit.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_ulong allocations;
// Where the count is kept: `allocations`, or the shared page of MALLOC_COUNTER_FILE once mapped.
static atomic_ulong *counter = &allocations;
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);

// dlsym may itself call calloc before real_calloc is known: serve it from here.
static char bootstrap[4096];
static size_t bootstrap_used;

static void resolve(void) {
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
}

void *malloc(size_t size) {
    if (!real_malloc) resolve();
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    return real_malloc(size);
}

void *calloc(size_t count, size_t size) {
    if (!real_calloc) {
        size_t bytes = (count * size + 15) & ~(size_t)15;
        if (bootstrap_used + bytes > sizeof bootstrap) return NULL;
        void *memory = bootstrap + bootstrap_used;
        bootstrap_used += bytes;
        return memory;
    }
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    return real_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    if (!real_realloc) resolve();
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    return real_realloc(pointer, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    if (!real_posix_memalign) resolve();
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    return real_posix_memalign(out, alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    if (!real_aligned_alloc) resolve();
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    return real_aligned_alloc(alignment, size);
}

void free(void *pointer) {
    static void (*real_free)(void *);
    if ((char *)pointer >= bootstrap && (char *)pointer < bootstrap + sizeof bootstrap) return;
    if (!real_free) real_free = dlsym(RTLD_NEXT, "free");
    real_free(pointer);
}

// Allocations made before this runs (by the loader, other constructors) are carried over; ones
// racing with the switch would be lost, but the program has no threads yet.
__attribute__((constructor)) static void map_counter_file(void) {
    const char *path = getenv("MALLOC_COUNTER_FILE");
    if (!path) return;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (ftruncate(fd, sizeof(atomic_ulong)) == 0) {
        void *page = mmap(NULL, sizeof(atomic_ulong), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (page != MAP_FAILED) {
            atomic_store((atomic_ulong *)page, atomic_load(&allocations));
            counter = page;
        }
    }
    close(fd);
}

__attribute__((destructor)) static void report(void) {
    fprintf(stderr, "allocations: %lu\n", atomic_load(counter));
}
