/*
 * How fast the C library's memcpy copies a large buffer, by the distance of the destination past the
 * source modulo a page. On this machine's AMD EPYC, glibc copies large buffers with `rep movsb`,
 * which runs 20-30 times slower when the destination lies 1 to 31 octets past the source modulo
 * 4096 (see `zring_zmtp::pool`, which keeps its copies out of 1 to 63).
 *
 * Build and run:  cc -O2 -o /tmp/copy_distance scripts/copy_distance.c && /tmp/copy_distance [SIZE]
 * Prints the rate for every distance from 0 to 4095 whose copy of SIZE octets (default 65536) ran
 * below 15 GB/s, then the median rate inside the band (1-31) and outside it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 65536;
    char *src = aligned_alloc(4096, n + 8192);
    char *dst = aligned_alloc(4096, n + 8192);
    if (!src || !dst)
        return 1;
    memset(src, 1, n + 8192);
    memset(dst, 2, n + 8192);
    static double inside[32], outside[4096];
    int n_in = 0, n_out = 0;
    for (int distance = 0; distance < 4096; distance++) {
        char *s = src + 16, *d = dst + (16 + distance) % 4096;
        double t0 = now_ns();
        for (int k = 0; k < 50; k++) {
            memcpy(d, s, n);
            __asm__ volatile("" : : "r"(d) : "memory");
        }
        double rate = n / ((now_ns() - t0) / 50); /* octets per ns = GB/s */
        if (rate < 15)
            printf("distance %4d: %.1f GB/s\n", distance, rate);
        if (distance >= 1 && distance < 32)
            inside[n_in++] = rate;
        else
            outside[n_out++] = rate;
    }
    qsort(inside, n_in, sizeof(double), by_value);
    qsort(outside, n_out, sizeof(double), by_value);
    printf("median, distance 1-31: %.1f GB/s; elsewhere: %.1f GB/s\n", inside[n_in / 2],
           outside[n_out / 2]);
    return 0;
}
