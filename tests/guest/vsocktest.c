/*
 * vsocktest - AF_VSOCK traffic driver that runs inside the integration-test guest.
 *
 * Built static by tests/guest/build-guest.sh (gcc -static -O2) and put in the guest's initramfs
 * as /bin/vsocktest. It only ever runs inside a QEMU guest, never on the host.
 *
 * USAGE
 *   vsocktest [OPTIONS] SUBCOMMAND ARGS...
 *
 * OPTIONS (before the subcommand)
 *   -t SECONDS   idle timeout of every blocking call (connect, send, recv, poll)    [10]
 *   -T SECONDS   watchdog for the whole run (alarm): exit 3 when it fires          [120]
 *   -a SECONDS   how long a server waits for each incoming connection             [= -T]
 *   -c BYTES     I/O chunk size for stream reads and writes                        [65536]
 *   -s SEED      pattern seed (see PATTERN)                                        [0]
 *   -B BYTES     set SO_VM_SOCKETS_BUFFER_SIZE (and _MAX_SIZE) on every socket     [kernel's]
 *   -N           no checksum and no pattern check (pure throughput; crc32=none)
 *
 * SUBCOMMANDS (CID 2 = VMADDR_CID_HOST; "stream" = SOCK_STREAM, "seq" = SOCK_SEQPACKET)
 *   cid                              print the local CID (IOCTL_VM_SOCKETS_GET_LOCAL_CID)
 *   echo-client CID PORT NBYTES      stream: connect, send NBYTES of pattern while reading the echo
 *                                    back, shutdown(SHUT_WR) after the last byte, read until EOF,
 *                                    verify count + pattern, print CRC-32
 *   echo-server PORT [COUNT]         stream: listen, accept COUNT (default 1) connections served
 *                                    concurrently (one process each), echo each until EOF, close
 *   send CID PORT NBYTES             stream: connect, send NBYTES of pattern, shutdown(SHUT_WR),
 *                                    wait for the peer to close (so the bytes surely arrived)
 *   recv CID PORT [NBYTES]           stream: connect, read until EOF (verify count when given)
 *   recv-server PORT [NBYTES]        stream: accept one, read until EOF, close; verify the count
 *                                    when NBYTES is given; the pattern is always checked
 *   server-send PORT NBYTES          stream: accept one, send NBYTES of pattern, shutdown(SHUT_WR),
 *                                    wait for the peer to close
 *   seq-client CID PORT SIZE...      seq: send one message per SIZE (1..1048576 bytes; message i
 *                                    uses seed SEED+i), read each echo as exactly one message:
 *                                    same length, MSG_TRUNC clear, same bytes. Messages go out in
 *                                    bursts of at most 128 KiB (or one larger message) before their
 *                                    echoes are read, so several messages are queued at once.
 *                                    Linux refuses a message larger than the peer's buf_alloc
 *                                    (256 KiB by default) with EMSGSIZE.
 *   seq-echo-server PORT [COUNT]     seq: accept COUNT (default 1) connections concurrently, echo
 *                                    every message as one message until EOF, close
 *   halfclose-client CID PORT [NBYTES]
 *                                    stream: send NBYTES (default 65536), shutdown(SHUT_WR), then
 *                                    keep reading: expects the reply "GOT <n> <crc32>\n" and EOF
 *   halfclose-server PORT            stream: accept one, read until EOF, then still send
 *                                    "GOT <n> <crc32>\n" and close
 *   connect-refused CID PORT [MAXMS] stream: connect must fail with ECONNRESET or ECONNREFUSED
 *                                    within MAXMS milliseconds (default 1000)
 *   many-clients CID PORT N NBYTES   N concurrent echo-clients (client i uses seed SEED+i)
 *   shutrd-server PORT               stream: accept one, shutdown(SHUT_RD), print SHUTRD (the peer's
 *                                    sends must now fail with EPIPE), then accept a second connection
 *                                    (the peer's "done"), close both
 *   send-until-epipe CID PORT        stream: connect, read one byte (the host's go, after its
 *                                    shutdown(SHUT_RD)), send 4 KiB chunks until one fails: EPIPE
 *   peek-partial CID PORT NBYTES     stream: connect; read 1000 of the host's NBYTES, MSG_PEEK the
 *                                    rest once queued (must be the pattern from offset 1000), read it
 *   rcvlowat-server PORT def|low     stream: the suite's "virtio credit update + SO_RCVLOWAT" (def)
 *                                    and "+ low rx_bytes" (low), receiver side: 128 KiB buffer, one
 *                                    byte to the peer, the peer sends 128 KiB + 1; read 64 KiB, then
 *                                    poll() with SO_RCVLOWAT 64 KiB + 1 must see the last byte
 *   send-small CID PORT COUNT SIZE   stream: COUNT non-blocking sends of SIZE bytes; prints
 *                                    "BLOCKED sent=<n>" at the first EAGAIN; fails if none blocked
 *   credit-bounds-server PORT BUFSIZE NBYTES
 *                                    stream: buffer BUFSIZE, read only when BUFSIZE/2 is queued; the
 *                                    queued bytes must never exceed BUFSIZE (the sender's credit)
 *
 * PATTERN
 *   Byte at stream offset k (k = 0, 1, ... counted from the first byte of a connection, or of a
 *   message for seq) is  (uint8_t)((k + SEED) % 251).  The period 251 is prime, so chunks that
 *   are lost, duplicated or reordered at any power-of-two boundary are detected.
 *   C#:  (byte)((k + seed) % 251)
 *
 * CHECKSUM
 *   CRC-32 IEEE 802.3 (reflected polynomial 0xEDB88320, init 0xFFFFFFFF, final xor 0xFFFFFFFF):
 *   the same as zlib's crc32() and .NET's System.IO.Hashing.Crc32. Printed as 8 lowercase hex
 *   digits. For seq it covers all messages concatenated.
 *
 * HALF-CLOSE PROTOCOL (halfclose-client / halfclose-server and their host counterparts)
 *   The client sends n pattern bytes and shuts down its write side. The server reads until EOF,
 *   then replies with the ASCII line "GOT <n decimal> <crc32 8 hex>\n" and closes.
 *
 * OUTPUT (stdout, line-buffered, one item per line)
 *   LISTENING <sub> port=<p>         a server is bound and listening (connect now)
 *   CONN <sub> peer=<cid>:<port> ... one served connection (servers)
 *   CLIENT <i> ...                   one client of many-clients
 *   OK <sub> key=value...            the last line on success
 *   FAIL <sub> key=value... reason=<word> [errno=<NAME>] [detail=<text>]
 *                                    the last line on failure
 *   Keys used: bytes, crc32, ms, mibps, cid, msgs, conns, errno, peer.
 *
 * EXIT CODES
 *   0 ok, 1 check failed (data mismatch, wrong errno, peer error), 2 usage error,
 *   3 timeout (idle timeout or watchdog), 4 no vsock transport (local CID is VMADDR_CID_ANY)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

enum { EX_OK = 0, EX_FAIL = 1, EX_USAGE = 2, EX_TIMEOUT = 3, EX_NODEV = 4 };

#define PATTERN_PERIOD 251u
#define SEQ_MAX_MSG (1u << 20)
#define SEQ_BURST (128u * 1024u)
#define MAX_CLIENTS 1024

static int g_idle_s = 10;
static int g_total_s = 120;
static int g_accept_s = -1;
static size_t g_chunk = 65536;
static uint32_t g_seed = 0;
static long g_vbuf = -1;
static bool g_nocheck = false;
static const char *g_sub = "?";

/* ------------------------------------------------------------------------------------------ */
/* CRC-32 (IEEE), slicing-by-8 */

static uint32_t crc_tab[8][256];

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

/* Running value: start with 0, feed bytes, the result is the finished CRC-32 (zlib style). */
static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n)
{
    uint32_t c = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        c = crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        n--;
    }
    while (n >= 8) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + 4, 4);
        a ^= c;
        c = crc_tab[7][a & 0xff] ^ crc_tab[6][(a >> 8) & 0xff] ^ crc_tab[5][(a >> 16) & 0xff] ^
            crc_tab[4][a >> 24] ^ crc_tab[3][b & 0xff] ^ crc_tab[2][(b >> 8) & 0xff] ^
            crc_tab[1][(b >> 16) & 0xff] ^ crc_tab[0][b >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

/* ------------------------------------------------------------------------------------------ */
/* Pattern: pat(seed) holds period + max-len bytes, so offset k's data starts at pat + k % 251. */

static uint8_t *pattern_new(uint32_t seed, size_t maxlen)
{
    uint8_t *p = malloc(maxlen + PATTERN_PERIOD);
    if (!p) {
        perror("malloc");
        exit(EX_FAIL);
    }
    for (size_t k = 0; k < maxlen + PATTERN_PERIOD; k++)
        p[k] = (uint8_t)((k + seed) % PATTERN_PERIOD);
    return p;
}

static const uint8_t *pattern_at(const uint8_t *pat, uint64_t offset)
{
    return pat + offset % PATTERN_PERIOD;
}

/* ------------------------------------------------------------------------------------------ */
/* Results and reporting */

struct result {
    int code;          /* EX_* */
    uint64_t bytes;    /* payload bytes (direction depends on the subcommand) */
    uint64_t msgs;     /* seq messages */
    uint32_t crc;      /* CRC-32 of the payload */
    double secs;       /* elapsed */
    int64_t bad_at;    /* first pattern mismatch offset, -1 if none */
    char peer[48];     /* "cid:port" */
    char msg[240];     /* failure: "reason=... errno=... detail=..." */
};

static void result_init(struct result *r)
{
    memset(r, 0, sizeof *r);
    r->bad_at = -1;
    strcpy(r->peer, "-");
}

static void set_fail(struct result *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_fail(struct result *r, int code, const char *fmt, ...)
{
    if (r->code != EX_OK)
        return; /* keep the first failure */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    r->code = code;
}

static const char *errname(int e)
{
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

/* A failed syscall: timeouts (EAGAIN from SO_*TIMEO, ETIMEDOUT) map to EX_TIMEOUT. */
static void set_errno(struct result *r, const char *what, int e)
{
    int code = (e == EAGAIN || e == EWOULDBLOCK || e == ETIMEDOUT) ? EX_TIMEOUT : EX_FAIL;
    set_fail(r, code, "reason=%s-%s errno=%s", what,
             code == EX_TIMEOUT ? "timeout" : "error", errname(e));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mibps(uint64_t bytes, double secs)
{
    return secs > 0 ? (double)bytes / 1048576.0 / secs : 0.0;
}

static void fmt_crc(char *buf, size_t n, uint32_t crc)
{
    if (g_nocheck)
        snprintf(buf, n, "none");
    else
        snprintf(buf, n, "%08" PRIx32, crc);
}

/* Print the final OK/FAIL line for r and exit with its code. */
static void finish(const struct result *r, const char *extra_fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
static void finish(const struct result *r, const char *extra_fmt, ...)
{
    char extra[256] = "";
    if (extra_fmt) {
        va_list ap;
        va_start(ap, extra_fmt);
        vsnprintf(extra, sizeof extra, extra_fmt, ap);
        va_end(ap);
    }
    char crc[16];
    fmt_crc(crc, sizeof crc, r->crc);
    printf("%s %s%s%s bytes=%" PRIu64 " crc32=%s ms=%.0f mibps=%.2f%s%s\n",
           r->code == EX_OK ? "OK" : "FAIL", g_sub, extra[0] ? " " : "", extra, r->bytes, crc,
           r->secs * 1000.0, mibps(r->bytes, r->secs), r->code == EX_OK ? "" : " ",
           r->code == EX_OK ? "" : r->msg);
    fflush(stdout);
    exit(r->code);
}

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
    char m[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    printf("FAIL %s %s\n", g_sub, m);
    fflush(stdout);
    exit(code);
}

static void on_alarm(int sig)
{
    (void)sig;
    char m[160];
    int n = snprintf(m, sizeof m, "FAIL %s reason=watchdog total_s=%d pid=%d\n", g_sub, g_total_s,
                     (int)getpid());
    if (n > 0)
        (void)!write(STDOUT_FILENO, m, (size_t)n);
    _exit(EX_TIMEOUT);
}

static void arm_watchdog(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    alarm((unsigned)g_total_s);
}

/* ------------------------------------------------------------------------------------------ */
/* Argument parsing */

static uint64_t parse_u64(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    uint64_t mul = 1;
    if (*end == 'K' || *end == 'k') mul = 1024, end++;
    else if (*end == 'M' || *end == 'm') mul = 1024 * 1024, end++;
    else if (*end == 'G' || *end == 'g') mul = 1024ull * 1024 * 1024, end++;
    if (errno || end == s || *end || s[0] == '-')
        die(EX_USAGE, "reason=usage detail=bad-%s:%s", what, s);
    return (uint64_t)v * mul;
}

static uint32_t parse_u32(const char *s, const char *what)
{
    uint64_t v = parse_u64(s, what);
    if (v > UINT32_MAX)
        die(EX_USAGE, "reason=usage detail=%s-too-large:%s", what, s);
    return (uint32_t)v;
}

/* ------------------------------------------------------------------------------------------ */
/* Sockets */

static void set_timeouts(int fd, int secs)
{
    struct timeval tv = { .tv_sec = secs, .tv_usec = 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof tv);
}

static int vsock_socket(int type, struct result *r)
{
    int fd = socket(AF_VSOCK, type | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        set_errno(r, "socket", errno);
        return -1;
    }
    if (g_vbuf > 0) {
        unsigned long long v = (unsigned long long)g_vbuf;
        setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &v, sizeof v);
        if (setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &v, sizeof v) < 0) {
            set_errno(r, "setsockopt-buffer", errno);
            close(fd);
            return -1;
        }
    }
    set_timeouts(fd, g_idle_s);
    return fd;
}

static int vsock_connect(int type, uint32_t cid, uint32_t port, struct result *r)
{
    int fd = vsock_socket(type, r);
    if (fd < 0)
        return -1;
    struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        set_errno(r, "connect", errno);
        close(fd);
        return -1;
    }
    snprintf(r->peer, sizeof r->peer, "%" PRIu32 ":%" PRIu32, cid, port);
    return fd;
}

static int vsock_listen(int type, uint32_t port)
{
    struct result r;
    result_init(&r);
    int fd = vsock_socket(type, &r);
    if (fd < 0)
        die(r.code, "%s", r.msg);
    struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port };
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        die(EX_FAIL, "reason=bind-error errno=%s port=%" PRIu32, errname(errno), port);
    if (listen(fd, 128) < 0)
        die(EX_FAIL, "reason=listen-error errno=%s", errname(errno));
    printf("LISTENING %s port=%" PRIu32 "\n", g_sub, port);
    fflush(stdout);
    return fd;
}

static int vsock_accept(int lfd, struct result *r)
{
    struct pollfd p = { .fd = lfd, .events = POLLIN };
    int ms = (g_accept_s >= 0 ? g_accept_s : g_total_s) * 1000;
    int n;
    do
        n = poll(&p, 1, ms);
    while (n < 0 && errno == EINTR);
    if (n == 0) {
        set_fail(r, EX_TIMEOUT, "reason=accept-timeout");
        return -1;
    }
    struct sockaddr_vm sa;
    socklen_t len = sizeof sa;
    int fd = n < 0 ? -1 : accept4(lfd, (struct sockaddr *)&sa, &len, SOCK_CLOEXEC);
    if (fd < 0) {
        set_errno(r, "accept", errno);
        return -1;
    }
    snprintf(r->peer, sizeof r->peer, "%u:%u", sa.svm_cid, sa.svm_port);
    set_timeouts(fd, g_idle_s);
    return fd;
}

static void set_nonblock(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/* ------------------------------------------------------------------------------------------ */
/* Stream data loops */

/* Feed received bytes at stream offset `off` into crc and pattern check. */
static void check_rx(struct result *r, const uint8_t *pat, uint64_t off, const uint8_t *buf, size_t n)
{
    if (g_nocheck)
        return;
    r->crc = crc_update(r->crc, buf, n);
    if (r->bad_at < 0 && memcmp(buf, pattern_at(pat, off), n) != 0) {
        for (size_t i = 0; i < n; i++)
            if (buf[i] != pattern_at(pat, off)[i]) {
                r->bad_at = (int64_t)(off + i);
                break;
            }
    }
}

static void send_all(int fd, uint64_t n, struct result *r)
{
    uint8_t *pat = pattern_new(g_seed, g_chunk);
    uint64_t off = 0;
    while (off < n) {
        size_t len = n - off < g_chunk ? (size_t)(n - off) : g_chunk;
        ssize_t w = send(fd, pattern_at(pat, off), len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            set_errno(r, "send", errno);
            break;
        }
        if (!g_nocheck)
            r->crc = crc_update(r->crc, pattern_at(pat, off), (size_t)w);
        off += (uint64_t)w;
    }
    r->bytes = off;
    free(pat);
}

/* Read until EOF. expect < 0: any count. Pattern failures are reported when strict. */
static void recv_all(int fd, int64_t expect, bool strict_pattern, struct result *r)
{
    uint8_t *pat = pattern_new(g_seed, g_chunk);
    uint8_t *buf = malloc(g_chunk);
    uint64_t off = 0;
    for (;;) {
        ssize_t n = recv(fd, buf, g_chunk, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            set_errno(r, "recv", errno);
            break;
        }
        if (n == 0)
            break;
        check_rx(r, pat, off, buf, (size_t)n);
        off += (uint64_t)n;
        if (expect >= 0 && off > (uint64_t)expect) {
            set_fail(r, EX_FAIL, "reason=too-many-bytes expected=%" PRId64, expect);
            break;
        }
    }
    r->bytes = off;
    if (expect >= 0 && r->code == EX_OK && off != (uint64_t)expect)
        set_fail(r, EX_FAIL, "reason=short expected=%" PRId64 " got=%" PRIu64, expect, off);
    if (strict_pattern && r->bad_at >= 0)
        set_fail(r, EX_FAIL, "reason=pattern-mismatch offset=%" PRId64, r->bad_at);
    free(buf);
    free(pat);
}

/* Puts one packet on the guest's vsock TX queue: a non-blocking connect to host port 1, which nobody serves
 * (the device answers RST), closed at once. Packets the guest kernel queued before it go to the device ahead
 * of it, with a notification, so a stall that a nudge ends was on the guest's side of the TX queue: its
 * packets had not reached the device. A stall in the device does not end this way. */
static void nudge_tx(void)
{
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return;
    struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = 1 };
    (void)connect(fd, (struct sockaddr *)&sa, sizeof sa);
    close(fd);
}

/* After our SHUT_WR: wait until the peer closes, discarding anything it sends. With nudges, in 1 s slices
 * with a TX nudge after each empty one (counted there), failing after the idle timeout without data. */
static void wait_eof(int fd, struct result *r, int *nudges)
{
    uint8_t buf[4096];
    double since = now_s();
    for (;;) {
        if (nudges) {
            struct pollfd p = { .fd = fd, .events = POLLIN };
            int k = poll(&p, 1, 1000);
            if (k == 0) {
                if (now_s() - since >= g_idle_s) {
                    set_fail(r, EX_TIMEOUT, "reason=wait-eof-timeout");
                    return;
                }
                nudge_tx();
                (*nudges)++;
                continue;
            }
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                set_errno(r, "wait-eof-poll", errno);
                return;
            }
        }
        ssize_t n = recv(fd, buf, sizeof buf, nudges ? MSG_DONTWAIT : 0);
        if (n == 0)
            return;
        if (n < 0) {
            if (errno == EINTR || (nudges && errno == EAGAIN))
                continue;
            set_errno(r, "wait-eof", errno);
            return;
        }
        since = now_s();
    }
}

/* Echo client: send n pattern bytes and read the echo at the same time (poll), SHUT_WR at end. */
static void echo_client(int fd, uint64_t n, uint32_t seed, struct result *r)
{
    uint8_t *pat = pattern_new(seed, g_chunk);
    uint8_t *buf = malloc(g_chunk);
    uint64_t sent = 0, got = 0;
    bool shut = false, eof = false;
    set_nonblock(fd, true);
    while (!eof) {
        if (sent == n && !shut) {
            if (shutdown(fd, SHUT_WR) < 0) {
                set_errno(r, "shutdown", errno);
                break;
            }
            shut = true;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN | (sent < n ? POLLOUT : 0) };
        int pn = poll(&p, 1, g_idle_s * 1000);
        if (pn < 0 && errno == EINTR)
            continue;
        if (pn <= 0) {
            set_fail(r, EX_TIMEOUT, "reason=idle-timeout sent=%" PRIu64 " echoed=%" PRIu64, sent, got);
            break;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t k = recv(fd, buf, g_chunk, 0);
            if (k < 0 && errno != EAGAIN && errno != EINTR) {
                set_errno(r, "recv", errno);
                break;
            }
            if (k == 0) {
                eof = true;
            } else if (k > 0) {
                if (got + (uint64_t)k > n) {
                    set_fail(r, EX_FAIL, "reason=too-many-bytes expected=%" PRIu64, n);
                    break;
                }
                /* with seed-specific pattern */
                if (!g_nocheck) {
                    r->crc = crc_update(r->crc, buf, (size_t)k);
                    if (r->bad_at < 0 && memcmp(buf, pattern_at(pat, got), (size_t)k) != 0) {
                        for (ssize_t i = 0; i < k; i++)
                            if (buf[i] != pattern_at(pat, got)[i]) {
                                r->bad_at = (int64_t)(got + (uint64_t)i);
                                break;
                            }
                    }
                }
                got += (uint64_t)k;
            }
        }
        if (sent < n && (p.revents & POLLOUT)) {
            size_t len = n - sent < g_chunk ? (size_t)(n - sent) : g_chunk;
            ssize_t w = send(fd, pattern_at(pat, sent), len, MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN && errno != EINTR) {
                set_errno(r, "send", errno);
                break;
            }
            if (w > 0)
                sent += (uint64_t)w;
        }
    }
    set_nonblock(fd, false);
    r->bytes = got;
    if (r->code == EX_OK && got != n)
        set_fail(r, EX_FAIL, "reason=short-echo expected=%" PRIu64 " got=%" PRIu64, n, got);
    if (r->bad_at >= 0)
        set_fail(r, EX_FAIL, "reason=pattern-mismatch offset=%" PRId64, r->bad_at);
    free(buf);
    free(pat);
}

/* Echo server side of one stream connection: write back everything until EOF. */
static void echo_serve(int fd, struct result *r)
{
    uint8_t *buf = malloc(g_chunk);
    for (;;) {
        ssize_t n = recv(fd, buf, g_chunk, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            set_errno(r, "recv", errno);
            break;
        }
        if (n == 0)
            break;
        if (!g_nocheck)
            r->crc = crc_update(r->crc, buf, (size_t)n);
        for (ssize_t off = 0; off < n;) {
            ssize_t w = send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                set_errno(r, "send", errno);
                goto out;
            }
            off += w;
        }
        r->bytes += (uint64_t)n;
    }
out:
    free(buf);
}

/* ------------------------------------------------------------------------------------------ */
/* Seqpacket */

static void seq_echo_serve(int fd, struct result *r)
{
    uint8_t *buf = malloc(SEQ_MAX_MSG + 1);
    for (;;) {
        struct iovec iov = { .iov_base = buf, .iov_len = SEQ_MAX_MSG + 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n = recvmsg(fd, &mh, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            set_errno(r, "recv", errno);
            break;
        }
        if (n == 0)
            break; /* EOF (zero-length messages are not part of the protocol) */
        if (mh.msg_flags & MSG_TRUNC) {
            set_fail(r, EX_FAIL, "reason=msg-trunc msg=%" PRIu64, r->msgs);
            break;
        }
        if (!g_nocheck)
            r->crc = crc_update(r->crc, buf, (size_t)n);
        ssize_t w;
        do
            w = send(fd, buf, (size_t)n, MSG_NOSIGNAL);
        while (w < 0 && errno == EINTR);
        if (w < 0) {
            set_errno(r, "send", errno);
            break;
        }
        if (w != n) {
            set_fail(r, EX_FAIL, "reason=short-send msg=%" PRIu64, r->msgs);
            break;
        }
        r->msgs++;
        r->bytes += (uint64_t)n;
    }
    free(buf);
}

static void seq_client(int fd, uint32_t *sizes, int count, struct result *r)
{
    uint32_t max = 0;
    for (int i = 0; i < count; i++)
        if (sizes[i] > max)
            max = sizes[i];
    uint8_t *buf = malloc((size_t)max + 2);
    int next = 0;
    while (next < count && r->code == EX_OK) {
        /* a burst: messages [next, end) whose total stays within SEQ_BURST (at least one) */
        int end = next;
        uint64_t total = 0;
        while (end < count && (end == next || total + sizes[end] <= SEQ_BURST))
            total += sizes[end++];
        for (int i = next; i < end; i++) {
            uint8_t *pat = pattern_new(g_seed + (uint32_t)i, sizes[i]);
            ssize_t w;
            do
                w = send(fd, pat, sizes[i], MSG_NOSIGNAL);
            while (w < 0 && errno == EINTR);
            free(pat);
            if (w < 0) {
                set_errno(r, "send", errno);
                snprintf(r->msg + strlen(r->msg), sizeof r->msg - strlen(r->msg), " msg=%d", i);
                break;
            }
            if ((uint32_t)w != sizes[i]) {
                set_fail(r, EX_FAIL, "reason=short-send msg=%d sent=%zd", i, w);
                break;
            }
        }
        for (int i = next; i < end && r->code == EX_OK; i++) {
            struct iovec iov = { .iov_base = buf, .iov_len = (size_t)sizes[i] + 1 };
            struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
            ssize_t n;
            do
                n = recvmsg(fd, &mh, 0);
            while (n < 0 && errno == EINTR);
            if (n < 0) {
                set_errno(r, "recv", errno);
                snprintf(r->msg + strlen(r->msg), sizeof r->msg - strlen(r->msg), " msg=%d", i);
                break;
            }
            if (n == 0) {
                set_fail(r, EX_FAIL, "reason=early-eof msg=%d", i);
                break;
            }
            if (mh.msg_flags & MSG_TRUNC) {
                set_fail(r, EX_FAIL, "reason=msg-trunc msg=%d expected=%" PRIu32, i, sizes[i]);
                break;
            }
            if ((uint64_t)n != sizes[i]) {
                set_fail(r, EX_FAIL, "reason=msg-size msg=%d expected=%" PRIu32 " got=%zd", i,
                         sizes[i], n);
                break;
            }
            if (!g_nocheck) {
                uint8_t *pat = pattern_new(g_seed + (uint32_t)i, sizes[i]);
                int bad = memcmp(buf, pat, sizes[i]);
                free(pat);
                if (bad) {
                    set_fail(r, EX_FAIL, "reason=msg-content msg=%d", i);
                    break;
                }
                r->crc = crc_update(r->crc, buf, (size_t)n);
            }
            r->msgs++;
            r->bytes += (uint64_t)n;
        }
        next = end;
    }
    free(buf);
}

/* ------------------------------------------------------------------------------------------ */
/* Forked workers with results in shared memory */

static struct result *shared_results(int n)
{
    void *p = mmap(NULL, sizeof(struct result) * (size_t)n, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        die(EX_FAIL, "reason=mmap-error errno=%s", errname(errno));
    struct result *rs = p;
    for (int i = 0; i < n; i++)
        result_init(&rs[i]);
    return rs;
}

/* Wait for children; a child that died without filling its slot counts as a failure. */
static void wait_children(pid_t *pids, struct result *rs, int n)
{
    for (int i = 0; i < n; i++) {
        if (pids[i] <= 0)
            continue;
        int st;
        while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR)
            ;
        if (WIFEXITED(st) && WEXITSTATUS(st) != 0 && rs[i].code == EX_OK)
            set_fail(&rs[i], WEXITSTATUS(st), "reason=child-exit status=%d", WEXITSTATUS(st));
        else if (WIFSIGNALED(st))
            set_fail(&rs[i], EX_FAIL, "reason=child-signal sig=%d", WTERMSIG(st));
    }
}

static void print_conn(const char *tag, int idx, const struct result *r)
{
    char crc[16];
    fmt_crc(crc, sizeof crc, r->crc);
    if (idx >= 0)
        printf("%s %d", tag, idx);
    else
        printf("%s %s", tag, g_sub);
    printf(" %s peer=%s bytes=%" PRIu64 " msgs=%" PRIu64 " crc32=%s ms=%.0f mibps=%.2f%s%s\n",
           r->code == EX_OK ? "ok" : "fail", r->peer, r->bytes, r->msgs, crc, r->secs * 1000.0,
           mibps(r->bytes, r->secs), r->code == EX_OK ? "" : " ", r->code == EX_OK ? "" : r->msg);
    fflush(stdout);
}

/* Accept `count` connections on a listener, serve each in a child process. */
static void serve_many(int type, uint32_t port, int count)
{
    int lfd = vsock_listen(type, port);
    struct result *rs = shared_results(count);
    pid_t *pids = calloc((size_t)count, sizeof(pid_t));
    double t0 = now_s();
    int accepted = 0;
    struct result acc;
    result_init(&acc);
    for (int i = 0; i < count; i++) {
        int fd = vsock_accept(lfd, &acc);
        if (fd < 0)
            break;
        accepted++;
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            set_errno(&acc, "fork", errno);
            close(fd);
            break;
        }
        if (pid == 0) {
            close(lfd);
            alarm((unsigned)g_total_s);
            struct result *r = &rs[i];
            strcpy(r->peer, acc.peer);
            double c0 = now_s();
            if (type == SOCK_STREAM)
                echo_serve(fd, r);
            else
                seq_echo_serve(fd, r);
            close(fd);
            r->secs = now_s() - c0;
            print_conn("CONN", -1, r);
            _exit(r->code);
        }
        pids[i] = pid;
        close(fd);
    }
    close(lfd);
    wait_children(pids, rs, count);
    struct result total;
    result_init(&total);
    total.code = acc.code;
    if (acc.code != EX_OK)
        strcpy(total.msg, acc.msg);
    int ok = 0;
    for (int i = 0; i < accepted; i++) {
        total.bytes += rs[i].bytes;
        total.msgs += rs[i].msgs;
        if (rs[i].code == EX_OK)
            ok++;
        else
            set_fail(&total, rs[i].code, "conn=%d %s", i, rs[i].msg);
    }
    total.secs = now_s() - t0;
    total.crc = 0;
    g_nocheck = true; /* no aggregate CRC for a server of many connections */
    finish(&total, "conns=%d ok=%d msgs=%" PRIu64, accepted, ok, total.msgs);
}

/* ------------------------------------------------------------------------------------------ */
/* Subcommands */

/* ------------------------------------------------------------------------------------------ */
/* Counterparts of the kernel suite's checks, host <-> guest (see the SUBCOMMANDS list above)  */

/* Waits until `fd` has at least `want` bytes queued (MSG_PEEK), within the idle timeout.
 * Returns the queued count (>= want), or -1 with r set. */
static ssize_t wait_queued(int fd, uint8_t *buf, size_t want, struct result *r)
{
    double deadline = now_s() + g_idle_s;
    for (;;) {
        ssize_t n = recv(fd, buf, want, MSG_PEEK | MSG_DONTWAIT);
        if (n >= 0 && (size_t)n >= want)
            return n;
        if (n == 0) {
            set_fail(r, EX_FAIL, "reason=eof-before-data want=%zu", want);
            return -1;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            set_errno(r, "peek", errno);
            return -1;
        }
        if (now_s() > deadline) {
            set_fail(r, EX_TIMEOUT, "reason=queue-timeout want=%zu have=%zd", want, n);
            return -1;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        poll(&p, 1, 50); /* woken by new data; the timeout only re-checks a partial queue */
    }
}

/* Reads exactly n bytes (blocking, idle timeout), checks them against the pattern at r->bytes. */
static bool read_exact_checked(int fd, const uint8_t *pat, uint8_t *buf, size_t n, int flags, struct result *r)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = recv(fd, buf + got, n - got, flags);
        if (k == 0) {
            set_fail(r, EX_FAIL, "reason=unexpected-eof at=%" PRIu64, r->bytes + got);
            return false;
        }
        if (k < 0) {
            if (errno == EINTR)
                continue;
            set_errno(r, "recv", errno);
            return false;
        }
        got += (size_t)k;
    }
    check_rx(r, pat, r->bytes, buf, n);
    r->bytes += n;
    if (r->bad_at >= 0) {
        set_fail(r, EX_FAIL, "reason=pattern-mismatch at=%" PRId64, r->bad_at);
        return false;
    }
    return true;
}

/* shutrd-server PORT: accept one, shutdown(SHUT_RD), print SHUTRD, then accept a second
 * connection on the same port: the peer's "done" signal (the peer's close cannot be seen on a
 * socket that no longer reads); close both. */
static void cmd_shutrd_server(uint32_t port)
{
    struct result r;
    result_init(&r);
    int lfd = vsock_listen(SOCK_STREAM, port);
    int fd = vsock_accept(lfd, &r);
    double t0 = now_s();
    if (fd >= 0) {
        if (shutdown(fd, SHUT_RD) < 0) {
            set_errno(&r, "shutdown", errno);
        } else {
            printf("SHUTRD\n");
            fflush(stdout);
            struct result r2;
            result_init(&r2);
            int done = vsock_accept(lfd, &r2);
            if (done < 0)
                set_fail(&r, r2.code, "reason=no-done-connection %s", r2.msg);
            else
                close(done);
        }
        close(fd);
    }
    close(lfd);
    r.secs = now_s() - t0;
    finish(&r, "peer=%s", r.peer);
}

/* send-until-epipe CID PORT: connect, read the host's one byte (sent after its SHUT_RD), then send
 * 4 KiB chunks until a send fails; it must fail with EPIPE within the idle timeout. */
static void cmd_send_until_epipe(uint32_t cid, uint32_t port)
{
    struct result r;
    result_init(&r);
    signal(SIGPIPE, SIG_IGN);
    double t0 = now_s();
    int fd = vsock_connect(SOCK_STREAM, cid, port, &r);
    int sends = 0;
    if (fd >= 0) {
        uint8_t b;
        ssize_t k = recv(fd, &b, 1, 0);
        if (k != 1) {
            set_fail(&r, EX_FAIL, "reason=no-go-byte");
        } else {
            uint8_t *pat = pattern_new(g_seed, 4096);
            double deadline = now_s() + g_idle_s;
            for (;;) {
                ssize_t s = send(fd, pat, 4096, MSG_DONTWAIT);
                if (s > 0) {
                    r.bytes += (uint64_t)s;
                    sends++;
                } else if (s < 0 && errno == EPIPE) {
                    break;
                } else if (s < 0 && errno != EAGAIN && errno != EINTR) {
                    set_errno(&r, "send-not-epipe", errno);
                    break;
                } else {
                    struct pollfd p = { .fd = fd, .events = POLLOUT };
                    poll(&p, 1, 50); /* writable, or re-check for the peer's shutdown */
                }
                if (now_s() > deadline) {
                    set_fail(&r, EX_TIMEOUT, "reason=no-epipe sends=%d", sends);
                    break;
                }
            }
            free(pat);
        }
        close(fd);
    }
    r.secs = now_s() - t0;
    finish(&r, "peer=%s sends=%d", r.peer, sends);
}

/* peek-partial CID PORT NBYTES (NBYTES > 1000): connect; the host sends NBYTES of pattern. Read
 * 1000 bytes, wait until the rest is queued, MSG_PEEK all of it (must be the pattern from offset
 * 1000, not from the first packet's start), peek a small prefix again, then read it for real. */
static void cmd_peek_partial(uint32_t cid, uint32_t port, uint64_t n)
{
    struct result r;
    result_init(&r);
    if (n <= 1000 || n > (16u << 20))
        die(EX_USAGE, "reason=usage detail=nbytes-1001..16M");
    double t0 = now_s();
    int fd = vsock_connect(SOCK_STREAM, cid, port, &r);
    if (fd >= 0) {
        uint8_t *pat = pattern_new(g_seed, (size_t)n);
        uint8_t *buf = malloc((size_t)n);
        size_t rest = (size_t)n - 1000;
        if (read_exact_checked(fd, pat, buf, 1000, 0, &r) && wait_queued(fd, buf, rest, &r) >= 0) {
            if (memcmp(buf, pattern_at(pat, 1000), rest) != 0)
                set_fail(&r, EX_FAIL, "reason=peek-mismatch");
            ssize_t k = recv(fd, buf, 100, MSG_PEEK | MSG_DONTWAIT);
            if (r.code == EX_OK && (k != 100 || memcmp(buf, pattern_at(pat, 1000), 100) != 0))
                set_fail(&r, EX_FAIL, "reason=second-peek-mismatch got=%zd", k);
            if (r.code == EX_OK)
                read_exact_checked(fd, pat, buf, rest, 0, &r);
            if (r.code == EX_OK)
                wait_eof(fd, &r, NULL);
        }
        free(buf);
        free(pat);
        close(fd);
    }
    r.secs = now_s() - t0;
    finish(&r, "peer=%s", r.peer);
}

/* rcvlowat-server PORT def|low: the kernel suite's "virtio credit update + SO_RCVLOWAT" (def) and
 * "+ low rx_bytes" (low), guest side. Buffer 128 KiB; the peer sends 128 KiB + 1 after our one byte;
 * wait for 128 KiB queued, read 64 KiB; SO_RCVLOWAT 64 KiB + 1 (set before reading for low, after
 * for def: either way the guest sends a credit update); poll must see the last byte. */
static void cmd_rcvlowat_server(uint32_t port, bool low)
{
    struct result r;
    result_init(&r);
    const size_t bufsz = 128 * 1024, pkt = 64 * 1024;
    int lfd = vsock_listen(SOCK_STREAM, port);
    int fd = vsock_accept(lfd, &r);
    close(lfd);
    double t0 = now_s();
    if (fd >= 0) {
        uint8_t *pat = pattern_new(g_seed, bufsz + 1);
        uint8_t *buf = malloc(bufsz + 1);
        unsigned long long v = bufsz;
        int lowat = (int)pkt + 1;
        if (setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &v, sizeof v) < 0)
            set_errno(&r, "setsockopt-buffer", errno);
        else if (low && setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat) < 0)
            set_errno(&r, "setsockopt-rcvlowat", errno);
        else if (send(fd, "G", 1, 0) != 1)
            set_errno(&r, "send-go", errno);
        else if (wait_queued(fd, buf, bufsz, &r) >= 0 && read_exact_checked(fd, pat, buf, pkt, 0, &r)) {
            if (!low && setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat) < 0)
                set_errno(&r, "setsockopt-rcvlowat", errno);
            struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDNORM };
            int k;
            do
                k = poll(&p, 1, g_idle_s * 1000);
            while (k < 0 && errno == EINTR);
            if (r.code == EX_OK && k <= 0)
                set_fail(&r, EX_TIMEOUT, "reason=poll-rcvlowat-timeout");
            if (r.code == EX_OK && read_exact_checked(fd, pat, buf, pkt + 1, MSG_DONTWAIT, &r))
                wait_eof(fd, &r, NULL);
        }
        free(buf);
        free(pat);
        close(fd);
    }
    r.secs = now_s() - t0;
    finish(&r, "peer=%s", r.peer);
}

/* send-small CID PORT COUNT SIZE: COUNT non-blocking sends of SIZE pattern bytes; prints
 * "BLOCKED sent=<bytes>" at the first EAGAIN (backpressure reached the guest), then waits for
 * POLLOUT and goes on; SHUT_WR after the last, wait for the peer's close.
 * The wait for POLLOUT, and the wait for EOF, are polled in 1 s slices: after each empty one the
 * send is retried and the guest's TX queue nudged (nudge_tx). Either fails only after the idle
 * timeout without progress, so a device that gives no credit or loses the SHUTDOWN still fails, while
 * a wake-up the guest kernel skipped (sends-after-timeout) or packets it kept from the device (ended by
 * a nudge) are counted in the result instead of ending as a 30 s stall. */
static void cmd_send_small(uint32_t cid, uint32_t port, uint32_t count, uint32_t size)
{
    struct result r;
    result_init(&r);
    if (size < 1 || size > 65536)
        die(EX_USAGE, "reason=usage detail=size-1..65536");
    double t0 = now_s();
    int fd = vsock_connect(SOCK_STREAM, cid, port, &r);
    bool blocked = false;
    int poll_timeouts = 0, late_sends = 0, nudges = 0;
    bool timed_out = false;
    double stalled_since = 0;
    if (fd >= 0) {
        uint8_t *pat = pattern_new(g_seed, size);
        set_nonblock(fd, true);
        uint64_t total = (uint64_t)count * size;
        while (r.bytes < total && r.code == EX_OK) {
            size_t piece = total - r.bytes < size ? (size_t)(total - r.bytes) : size;
            ssize_t s = send(fd, pattern_at(pat, r.bytes), piece, 0);
            if (s > 0) {
                r.crc = crc_update(r.crc, pattern_at(pat, r.bytes), (size_t)s);
                r.bytes += (uint64_t)s;
                if (timed_out)
                    late_sends++;
                timed_out = false;
                stalled_since = 0;
                continue;
            }
            if (s < 0 && (errno == EAGAIN || errno == EINTR)) {
                if (!blocked) {
                    blocked = true;
                    printf("BLOCKED sent=%" PRIu64 "\n", r.bytes);
                    fflush(stdout);
                }
                if (stalled_since == 0)
                    stalled_since = now_s();
                else if (now_s() - stalled_since >= g_idle_s) {
                    set_fail(&r, EX_TIMEOUT, "reason=send-stalled at=%" PRIu64, r.bytes);
                    continue;
                }
                /* timed_out: the next send follows a poll that saw no POLLOUT for 1 s; if it goes
                 * through, the credit was there and the wake-up was not */
                struct pollfd p = { .fd = fd, .events = POLLOUT };
                timed_out = poll(&p, 1, 1000) == 0;
                if (timed_out) {
                    poll_timeouts++;
                    nudge_tx();
                    nudges++;
                }
                continue;
            }
            set_errno(&r, "send", errno);
        }
        set_nonblock(fd, false);
        if (r.code == EX_OK && shutdown(fd, SHUT_WR) < 0)
            set_errno(&r, "shutdown", errno);
        if (r.code == EX_OK)
            wait_eof(fd, &r, &nudges);
        if (r.code == EX_OK && !blocked)
            set_fail(&r, EX_FAIL, "reason=never-blocked");
        free(pat);
        close(fd);
    }
    r.secs = now_s() - t0;
    finish(&r, "peer=%s blocked=%d poll-timeouts=%d sends-after-timeout=%d nudges=%d", r.peer, blocked ? 1 : 0,
           poll_timeouts, late_sends, nudges);
}

/* credit-bounds-server PORT BUFSIZE NBYTES: the guest's buffer is BUFSIZE; it reads only when at
 * least BUFSIZE/2 (or the rest) is queued, so the sender runs into the credit limit; the queued
 * bytes (MSG_PEEK) must never exceed BUFSIZE, and every byte must arrive in order. */
static void cmd_credit_bounds_server(uint32_t port, uint32_t bufsz, uint64_t n)
{
    struct result r;
    result_init(&r);
    if (bufsz < 1024 || bufsz > (1u << 20))
        die(EX_USAGE, "reason=usage detail=bufsize-1K..1M");
    g_vbuf = bufsz;
    int lfd = vsock_listen(SOCK_STREAM, port);
    int fd = vsock_accept(lfd, &r);
    close(lfd);
    double t0 = now_s();
    size_t maxq = 0;
    if (fd >= 0) {
        uint8_t *pat = pattern_new(g_seed, (size_t)bufsz * 2);
        uint8_t *buf = malloc((size_t)bufsz * 2);
        while (r.code == EX_OK && r.bytes < n) {
            uint64_t left = n - r.bytes;
            size_t want = left < bufsz / 2 ? (size_t)left : bufsz / 2;
            ssize_t q = wait_queued(fd, buf, want, &r);
            if (q < 0)
                break;
            /* everything queued right now (peek with room for twice the buffer) */
            ssize_t all = recv(fd, buf, (size_t)bufsz * 2, MSG_PEEK | MSG_DONTWAIT);
            if (all > 0 && (size_t)all > maxq)
                maxq = (size_t)all;
            if (all > 0 && (size_t)all > bufsz) {
                set_fail(&r, EX_FAIL, "reason=credit-exceeded queued=%zd bufsize=%u", all, bufsz);
                break;
            }
            read_exact_checked(fd, pat, buf, want, 0, &r);
        }
        if (r.code == EX_OK)
            wait_eof(fd, &r, NULL);
        free(buf);
        free(pat);
        close(fd);
    }
    r.secs = now_s() - t0;
    finish(&r, "peer=%s maxqueued=%zu", r.peer, maxq);
}

static void usage(void) __attribute__((noreturn));
static void usage(void)
{
    fprintf(stderr,
            "usage: vsocktest [-t idle_s] [-T total_s] [-a accept_s] [-c chunk] [-s seed] [-B vsockbuf] [-N]\n"
            "                 SUBCOMMAND ARGS   (see the comment at the top of vsocktest.c)\n"
            "  cid | echo-client CID PORT NBYTES | echo-server PORT [COUNT] | send CID PORT NBYTES\n"
            "  recv CID PORT [NBYTES] | recv-server PORT [NBYTES] | server-send PORT NBYTES\n"
            "  seq-client CID PORT SIZE... | seq-echo-server PORT [COUNT]\n"
            "  halfclose-client CID PORT [NBYTES] | halfclose-server PORT\n"
            "  connect-refused CID PORT [MAXMS] | many-clients CID PORT N NBYTES\n"
            "  shutrd-server PORT | send-until-epipe CID PORT | peek-partial CID PORT NBYTES\n"
            "  rcvlowat-server PORT def|low | send-small CID PORT COUNT SIZE\n"
            "  credit-bounds-server PORT BUFSIZE NBYTES\n");
    printf("FAIL %s reason=usage\n", g_sub);
    exit(EX_USAGE);
}

static void need_args(int argc, int min, int max)
{
    if (argc < min || (max >= 0 && argc > max))
        usage();
}

static int cmd_cid(void)
{
    int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die(EX_NODEV, "reason=no-dev-vsock errno=%s", errname(errno));
    unsigned int cid = 0;
    if (ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) < 0)
        die(EX_NODEV, "reason=ioctl-error errno=%s", errname(errno));
    close(fd);
    if (cid == VMADDR_CID_ANY)
        die(EX_NODEV, "reason=no-transport cid=none");
    printf("OK cid cid=%u\n", cid);
    return EX_OK;
}

static int cmd_connect_refused(uint32_t cid, uint32_t port, uint32_t max_ms)
{
    struct result r;
    result_init(&r);
    int fd = vsock_socket(SOCK_STREAM, &r);
    if (fd < 0)
        die(r.code, "%s", r.msg);
    struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
    double t0 = now_s();
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    double ms = (now_s() - t0) * 1000.0;
    close(fd);
    if (rc == 0)
        die(EX_FAIL, "reason=connected ms=%.0f", ms);
    if (e != ECONNRESET && e != ECONNREFUSED)
        die(e == ETIMEDOUT ? EX_TIMEOUT : EX_FAIL, "reason=wrong-errno errno=%s ms=%.0f", errname(e), ms);
    if (ms > max_ms)
        die(EX_FAIL, "reason=too-slow errno=%s ms=%.0f max_ms=%" PRIu32, errname(e), ms, max_ms);
    printf("OK connect-refused errno=%s ms=%.0f\n", errname(e), ms);
    return EX_OK;
}

static void cmd_halfclose_client(uint32_t cid, uint32_t port, uint64_t n)
{
    struct result r;
    result_init(&r);
    double t0 = now_s();
    int fd = vsock_connect(SOCK_STREAM, cid, port, &r);
    if (fd >= 0) {
        send_all(fd, n, &r);
        uint32_t my_crc = r.crc;
        if (r.code == EX_OK && shutdown(fd, SHUT_WR) < 0)
            set_errno(&r, "shutdown", errno);
        char reply[128];
        size_t got = 0;
        while (r.code == EX_OK) {
            ssize_t k = recv(fd, reply + got, sizeof reply - 1 - got, 0);
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                set_errno(&r, "recv-after-shutdown", errno);
                break;
            }
            if (k == 0)
                break;
            got += (size_t)k;
            if (got >= sizeof reply - 1) {
                set_fail(&r, EX_FAIL, "reason=reply-too-long");
                break;
            }
        }
        reply[got] = 0;
        close(fd);
        if (r.code == EX_OK) {
            char want[128];
            if (g_nocheck)
                snprintf(want, sizeof want, "GOT %" PRIu64 " ", n);
            else
                snprintf(want, sizeof want, "GOT %" PRIu64 " %08" PRIx32 "\n", n, my_crc);
            bool match = g_nocheck ? strncmp(reply, want, strlen(want)) == 0 : strcmp(reply, want) == 0;
            if (!match) {
                for (char *c = reply; *c; c++)
                    if (*c == ' ' || *c == '\n' || *c < 32)
                        *c = '_';
                set_fail(&r, EX_FAIL, "reason=bad-reply reply_len=%zu reply=%s", got, reply);
            }
        }
        r.crc = my_crc;
    }
    r.secs = now_s() - t0;
    finish(&r, "peer=%s", r.peer);
}

static void cmd_halfclose_server(uint32_t port)
{
    int lfd = vsock_listen(SOCK_STREAM, port);
    struct result r;
    result_init(&r);
    int fd = vsock_accept(lfd, &r);
    close(lfd);
    double t0 = now_s();
    if (fd >= 0) {
        recv_all(fd, -1, true, &r);
        if (r.code == EX_OK) {
            char reply[64];
            int len = snprintf(reply, sizeof reply, "GOT %" PRIu64 " %08" PRIx32 "\n", r.bytes, r.crc);
            if (send(fd, reply, (size_t)len, MSG_NOSIGNAL) != len)
                set_errno(&r, "send-after-eof", errno);
        }
        close(fd);
    }
    r.secs = now_s() - t0;
    finish(&r, "peer=%s", r.peer);
}

static void cmd_many_clients(uint32_t cid, uint32_t port, int n, uint64_t nbytes)
{
    struct result *rs = shared_results(n);
    pid_t *pids = calloc((size_t)n, sizeof(pid_t));
    double t0 = now_s();
    fflush(stdout);
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            set_errno(&rs[i], "fork", errno);
            break;
        }
        if (pid == 0) {
            alarm((unsigned)g_total_s);
            struct result *r = &rs[i];
            double c0 = now_s();
            int fd = vsock_connect(SOCK_STREAM, cid, port, r);
            if (fd >= 0) {
                echo_client(fd, nbytes, g_seed + (uint32_t)i, r);
                close(fd);
            }
            r->secs = now_s() - c0;
            print_conn("CLIENT", i, r);
            _exit(r->code);
        }
        pids[i] = pid;
    }
    wait_children(pids, rs, n);
    struct result total;
    result_init(&total);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        total.bytes += rs[i].bytes;
        if (rs[i].code == EX_OK)
            ok++;
        else
            set_fail(&total, rs[i].code, "client=%d %s", i, rs[i].msg);
    }
    total.secs = now_s() - t0;
    g_nocheck = true; /* per-client CRCs are in the CLIENT lines */
    finish(&total, "clients=%d ok=%d", n, ok);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    crc_init();

    int opt;
    while ((opt = getopt(argc, argv, "+t:T:a:c:s:B:Nh")) != -1) {
        switch (opt) {
        case 't': g_idle_s = (int)parse_u32(optarg, "idle-timeout"); break;
        case 'T': g_total_s = (int)parse_u32(optarg, "total-timeout"); break;
        case 'a': g_accept_s = (int)parse_u32(optarg, "accept-timeout"); break;
        case 'c': g_chunk = (size_t)parse_u32(optarg, "chunk"); break;
        case 's': g_seed = parse_u32(optarg, "seed"); break;
        case 'B': g_vbuf = (long)parse_u32(optarg, "vsock-buffer"); break;
        case 'N': g_nocheck = true; break;
        default: usage();
        }
    }
    if (g_chunk == 0 || g_chunk > (64u << 20) || g_idle_s <= 0 || g_total_s <= 0)
        die(EX_USAGE, "reason=usage detail=bad-option");
    if (optind >= argc)
        usage();
    g_sub = argv[optind];
    char **a = argv + optind + 1;
    int na = argc - optind - 1;
    arm_watchdog();

    struct result r;
    result_init(&r);
    const char *s = g_sub;

    if (!strcmp(s, "cid")) {
        need_args(na, 0, 0);
        return cmd_cid();
    }
    if (!strcmp(s, "echo-client")) {
        need_args(na, 3, 3);
        uint32_t cid = parse_u32(a[0], "cid"), port = parse_u32(a[1], "port");
        uint64_t n = parse_u64(a[2], "nbytes");
        double t0 = now_s();
        int fd = vsock_connect(SOCK_STREAM, cid, port, &r);
        if (fd >= 0) {
            echo_client(fd, n, g_seed, &r);
            close(fd);
        }
        r.secs = now_s() - t0;
        finish(&r, "peer=%s", r.peer);
    }
    if (!strcmp(s, "echo-server") || !strcmp(s, "seq-echo-server")) {
        need_args(na, 1, 2);
        uint32_t port = parse_u32(a[0], "port");
        uint32_t count = na > 1 ? parse_u32(a[1], "count") : 1;
        if (count < 1 || count > MAX_CLIENTS)
            die(EX_USAGE, "reason=usage detail=count-1..%d", MAX_CLIENTS);
        serve_many(s[0] == 's' ? SOCK_SEQPACKET : SOCK_STREAM, port, (int)count);
    }
    if (!strcmp(s, "send")) {
        need_args(na, 3, 3);
        uint32_t cid = parse_u32(a[0], "cid"), port = parse_u32(a[1], "port");
        uint64_t n = parse_u64(a[2], "nbytes");
        double t0 = now_s();
        int fd = vsock_connect(SOCK_STREAM, cid, port, &r);
        if (fd >= 0) {
            send_all(fd, n, &r);
            if (r.code == EX_OK && shutdown(fd, SHUT_WR) < 0)
                set_errno(&r, "shutdown", errno);
            if (r.code == EX_OK)
                wait_eof(fd, &r, NULL);
            close(fd);
        }
        r.secs = now_s() - t0;
        finish(&r, "peer=%s", r.peer);
    }
    if (!strcmp(s, "recv")) {
        need_args(na, 2, 3);
        uint32_t cid = parse_u32(a[0], "cid"), port = parse_u32(a[1], "port");
        int64_t expect = na > 2 ? (int64_t)parse_u64(a[2], "nbytes") : -1;
        double t0 = now_s();
        int fd = vsock_connect(SOCK_STREAM, cid, port, &r);
        if (fd >= 0) {
            recv_all(fd, expect, true, &r);
            close(fd);
        }
        r.secs = now_s() - t0;
        finish(&r, "peer=%s", r.peer);
    }
    if (!strcmp(s, "recv-server")) {
        need_args(na, 1, 2);
        uint32_t port = parse_u32(a[0], "port");
        int64_t expect = na > 1 ? (int64_t)parse_u64(a[1], "nbytes") : -1;
        int lfd = vsock_listen(SOCK_STREAM, port);
        int fd = vsock_accept(lfd, &r);
        close(lfd);
        double t0 = now_s();
        if (fd >= 0) {
            recv_all(fd, expect, true, &r);
            close(fd);
        }
        r.secs = now_s() - t0;
        finish(&r, "peer=%s", r.peer);
    }
    if (!strcmp(s, "server-send")) {
        need_args(na, 2, 2);
        uint32_t port = parse_u32(a[0], "port");
        uint64_t n = parse_u64(a[1], "nbytes");
        int lfd = vsock_listen(SOCK_STREAM, port);
        int fd = vsock_accept(lfd, &r);
        close(lfd);
        double t0 = now_s();
        if (fd >= 0) {
            send_all(fd, n, &r);
            if (r.code == EX_OK && shutdown(fd, SHUT_WR) < 0)
                set_errno(&r, "shutdown", errno);
            if (r.code == EX_OK)
                wait_eof(fd, &r, NULL);
            close(fd);
        }
        r.secs = now_s() - t0;
        finish(&r, "peer=%s", r.peer);
    }
    if (!strcmp(s, "seq-client")) {
        need_args(na, 3, -1);
        uint32_t cid = parse_u32(a[0], "cid"), port = parse_u32(a[1], "port");
        int count = na - 2;
        uint32_t *sizes = calloc((size_t)count, sizeof *sizes);
        for (int i = 0; i < count; i++) {
            sizes[i] = parse_u32(a[2 + i], "size");
            if (sizes[i] < 1 || sizes[i] > SEQ_MAX_MSG)
                die(EX_USAGE, "reason=usage detail=size-1..%u:%s", SEQ_MAX_MSG, a[2 + i]);
        }
        double t0 = now_s();
        int fd = vsock_connect(SOCK_SEQPACKET, cid, port, &r);
        if (fd >= 0) {
            seq_client(fd, sizes, count, &r);
            if (r.code == EX_OK && shutdown(fd, SHUT_WR) < 0)
                set_errno(&r, "shutdown", errno);
            if (r.code == EX_OK)
                wait_eof(fd, &r, NULL);
            close(fd);
        }
        r.secs = now_s() - t0;
        finish(&r, "peer=%s msgs=%" PRIu64, r.peer, r.msgs);
    }
    if (!strcmp(s, "halfclose-client")) {
        need_args(na, 2, 3);
        cmd_halfclose_client(parse_u32(a[0], "cid"), parse_u32(a[1], "port"),
                             na > 2 ? parse_u64(a[2], "nbytes") : 65536);
    }
    if (!strcmp(s, "halfclose-server")) {
        need_args(na, 1, 1);
        cmd_halfclose_server(parse_u32(a[0], "port"));
    }
    if (!strcmp(s, "connect-refused")) {
        need_args(na, 2, 3);
        return cmd_connect_refused(parse_u32(a[0], "cid"), parse_u32(a[1], "port"),
                                   na > 2 ? parse_u32(a[2], "maxms") : 1000);
    }
    if (!strcmp(s, "many-clients")) {
        need_args(na, 4, 4);
        uint32_t cid = parse_u32(a[0], "cid"), port = parse_u32(a[1], "port");
        uint32_t n = parse_u32(a[2], "n");
        if (n < 1 || n > MAX_CLIENTS)
            die(EX_USAGE, "reason=usage detail=n-1..%d", MAX_CLIENTS);
        cmd_many_clients(cid, port, (int)n, parse_u64(a[3], "nbytes"));
    }
    if (!strcmp(s, "shutrd-server")) {
        need_args(na, 1, 1);
        cmd_shutrd_server(parse_u32(a[0], "port"));
    }
    if (!strcmp(s, "send-until-epipe")) {
        need_args(na, 2, 2);
        cmd_send_until_epipe(parse_u32(a[0], "cid"), parse_u32(a[1], "port"));
    }
    if (!strcmp(s, "peek-partial")) {
        need_args(na, 3, 3);
        cmd_peek_partial(parse_u32(a[0], "cid"), parse_u32(a[1], "port"), parse_u64(a[2], "nbytes"));
    }
    if (!strcmp(s, "rcvlowat-server")) {
        need_args(na, 2, 2);
        if (strcmp(a[1], "def") && strcmp(a[1], "low"))
            usage();
        cmd_rcvlowat_server(parse_u32(a[0], "port"), !strcmp(a[1], "low"));
    }
    if (!strcmp(s, "send-small")) {
        need_args(na, 4, 4);
        cmd_send_small(parse_u32(a[0], "cid"), parse_u32(a[1], "port"), parse_u32(a[2], "count"),
                       parse_u32(a[3], "size"));
    }
    if (!strcmp(s, "credit-bounds-server")) {
        need_args(na, 3, 3);
        cmd_credit_bounds_server(parse_u32(a[0], "port"), parse_u32(a[1], "bufsize"), parse_u64(a[2], "nbytes"));
    }
    usage();
}
