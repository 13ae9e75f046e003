/*
 * How the way a thread sleeps changes a one-way hop over a Unix (or TCP) stream socket: a ping-pong
 * of 64-octet messages between two processes, one pinned to each of the first two cores (SAME=1: both
 * on the first), that wait for each message in one of these ways:
 *
 *   block     blocking read(2), no timeout (what `zring bench`'s bare ping-pong does)
 *   poll      poll(2) on the stream and an eventfd, then a non-blocking recv(2) (zring before 2026-11-25)
 *   bounded   blocking recv(2) with SO_RCVTIMEO = 1 ms, then poll(2) if it timed out (zring since)
 *   polltmo   poll(2) with a 1 ms timeout, then a non-blocking recv(2)
 *
 * Build and run:  cc -O2 -o /tmp/wait_modes scripts/wait_modes.c && /tmp/wait_modes [unix|tcp]
 * Prints the mean one-way latency of each way, interleaved over 5 rounds of 20000 round trips.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { BLOCK, POLL, BOUNDED, POLLTMO, WAYS };
static const char *names[WAYS] = {"block", "poll", "bounded", "polltmo"};
enum { SIZE = 64, TRIPS = 20000, WARM = 1000, ROUNDS = 5 };

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void wait_poll(int fd, int efd, int timeout_ms) {
    struct pollfd p[2] = {{fd, POLLIN, 0}, {efd, POLLIN, 0}};
    poll(p, 2, timeout_ms);
}

/* Reads SIZE octets from `fd`, sleeping the given way whenever none have come. */
static void take(int way, int fd, int efd, char *buf) {
    int got = 0;
    while (got < SIZE) {
        ssize_t r;
        switch (way) {
        case BLOCK:
            r = read(fd, buf + got, SIZE - got);
            break;
        case BOUNDED:
            r = recv(fd, buf + got, SIZE - got, 0);
            if (r <= 0)
                wait_poll(fd, efd, -1);
            break;
        default:
            wait_poll(fd, efd, way == POLL ? -1 : 1);
            r = recv(fd, buf + got, SIZE - got, MSG_DONTWAIT);
        }
        if (r > 0)
            got += r;
    }
}

static void stream_pair(int tcp, int sv[2]) {
    if (!tcp) {
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        return;
    }
    int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(l, (struct sockaddr *)&a, sizeof a);
    getsockname(l, (struct sockaddr *)&a, &len);
    listen(l, 1);
    sv[0] = socket(AF_INET, SOCK_STREAM, 0);
    connect(sv[0], (struct sockaddr *)&a, sizeof a);
    sv[1] = accept(l, NULL, NULL);
    close(l);
    setsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(sv[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static double one_way(int way, int tcp, int same) {
    int sv[2];
    stream_pair(tcp, sv);
    struct timeval limit = {0, 1000};
    for (int i = 0; i < 2 && way == BOUNDED; i++)
        setsockopt(sv[i], SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    int efd = eventfd(0, 0);
    char buf[SIZE];
    memset(buf, 1, SIZE);
    pid_t child = fork();
    if (child == 0) {
        pin(same ? 0 : 1);
        for (int i = 0; i < TRIPS; i++) {
            take(way, sv[1], efd, buf);
            if (write(sv[1], buf, SIZE) != SIZE)
                _exit(1);
        }
        _exit(0);
    }
    pin(0);
    double start = 0;
    for (int i = 0; i < TRIPS; i++) {
        if (i == WARM)
            start = now_us();
        if (write(sv[0], buf, SIZE) != SIZE)
            exit(1);
        take(way, sv[0], efd, buf);
    }
    double us = (now_us() - start) / (TRIPS - WARM) / 2;
    waitpid(child, NULL, 0);
    close(sv[0]);
    close(sv[1]);
    close(efd);
    return us;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int tcp = argc > 1 && strcmp(argv[1], "tcp") == 0;
    int same = getenv("SAME") != NULL;
    double us[WAYS][ROUNDS];
    for (int r = 0; r < ROUNDS; r++)
        for (int w = 0; w < WAYS; w++)
            us[w][r] = one_way(w, tcp, same);
    printf("%s, %s: median one-way latency of %d rounds\n", tcp ? "tcp" : "unix",
           same ? "one core" : "one core each", ROUNDS);
    for (int w = 0; w < WAYS; w++) {
        qsort(us[w], ROUNDS, sizeof us[w][0], by_value);
        printf("  %-8s %6.2f us\n", names[w], us[w][ROUNDS / 2]);
    }
    return 0;
}
