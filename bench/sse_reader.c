/*
 * The load client of bench/stream_fanout.py: N SSE connections on one epoll loop, in C so
 * that the reader is not what limits a million deliveries a second (a Python reader would be).
 *
 *   sse_reader HOST PORT PATH CONNECTIONS SECONDS SAMPLED
 *
 * Opens CONNECTIONS keep-alive GETs of PATH, reads for SECONDS, and prints one line of JSON:
 * the events received per connection (min, max, total), and the publish-to-receipt latency
 * of every event on the first SAMPLED connections, from the "sent" field (UNIX seconds) the
 * publisher puts in each event: p50, p99, max in milliseconds.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define BUFFER (1 << 20)
#define MAX_SAMPLES 4000000

typedef struct {
    int fd;
    long events;
    /* The unread tail of the previous read: an event split between two reads. */
    char carry[4096];
    int carried;
} connection;

static double now(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec + tv.tv_usec / 1e6;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s HOST PORT PATH CONNECTIONS SECONDS SAMPLED\n", argv[0]);
        return 2;
    }
    const char *host = argv[1], *path = argv[3];
    int port = atoi(argv[2]), count = atoi(argv[4]), sampled = atoi(argv[6]);
    double seconds = atof(argv[5]);
    connection *conns = calloc(count, sizeof(connection));
    double *samples = malloc(sizeof(double) * MAX_SAMPLES);
    long nsamples = 0;
    char *buffer = malloc(BUFFER + 128);
    char request[1024];
    snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host);
    int epoll = epoll_create1(0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &address.sin_addr);
    for (int i = 0; i < count; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
            perror("connect");
            return 1;
        }
        if (write(fd, request, strlen(request)) < 0) {
            perror("write");
            return 1;
        }
        fcntl(fd, F_SETFL, O_NONBLOCK);
        conns[i].fd = fd;
        struct epoll_event event = {.events = EPOLLIN, .data.u32 = (unsigned)i};
        epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
    }
    const char marker[] = "\ndata: ";
    const char sent_key[] = "\"sent\":";
    double started = now(), end = started + seconds;
    struct epoll_event ready[256];
    while (now() < end) {
        int n = epoll_wait(epoll, ready, 256, 100);
        double arrived = now();
        for (int k = 0; k < n; k++) {
            connection *c = &conns[ready[k].data.u32];
            memcpy(buffer, c->carry, c->carried);
            ssize_t got = read(c->fd, buffer + c->carried, BUFFER);
            if (got <= 0) {
                if (got < 0 && errno == EAGAIN) continue;
                epoll_ctl(epoll, EPOLL_CTL_DEL, c->fd, NULL);
                continue;
            }
            size_t size = c->carried + got;
            char *at = buffer, *stop = buffer + size;
            /* Where the bytes not yet accounted for start. */
            char *pending = buffer;
            while ((at = memmem(at, stop - at, marker, sizeof marker - 1)) != NULL) {
                /* Count an event only once its data line is complete. */
                char *line_end = memchr(at + 1, '\n', stop - at - 1);
                if (line_end == NULL) {
                    pending = at;
                    break;
                }
                c->events++;
                if ((long)ready[k].data.u32 < sampled && nsamples < MAX_SAMPLES) {
                    char *sent = memmem(at, line_end - at, sent_key, sizeof sent_key - 1);
                    if (sent != NULL)
                        samples[nsamples++] = arrived - atof(sent + sizeof sent_key - 1);
                }
                at = line_end;
                pending = line_end;
            }
            if (at == NULL && stop - pending > (long)sizeof marker) {
                /* No marker pending: keep only what could be the start of a split one. */
                pending = stop - sizeof marker;
            }
            size_t rest = stop - pending;
            if (rest > sizeof c->carry) {
                pending = stop - sizeof marker; /* An event over 4 KiB: not counted. */
                rest = sizeof marker;
            }
            memcpy(c->carry, pending, rest);
            c->carried = (int)rest;
        }
    }
    long total = 0, low = -1, high = 0;
    for (int i = 0; i < count; i++) {
        total += conns[i].events;
        if (low < 0 || conns[i].events < low) low = conns[i].events;
        if (conns[i].events > high) high = conns[i].events;
    }
    qsort(samples, nsamples, sizeof(double), compare);
    double p50 = nsamples ? samples[nsamples / 2] * 1000 : -1;
    double p99 = nsamples ? samples[(long)(nsamples * 0.99)] * 1000 : -1;
    double max = nsamples ? samples[nsamples - 1] * 1000 : -1;
    printf("{\"connections\": %d, \"seconds\": %.2f, \"events_total\": %ld, \"events_min\": %ld, "
           "\"events_max\": %ld, \"samples\": %ld, \"p50_ms\": %.1f, \"p99_ms\": %.1f, "
           "\"max_ms\": %.1f}\n",
           count, now() - started, total, low, high, nsamples, p50, p99, max);
    return 0;
}
