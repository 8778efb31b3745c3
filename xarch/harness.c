/*
 * xarch test harness: a small static C program that drives the critical sections of one
 * `sections/<arch>.rs` object through the section ABI (see README.md) and checks them.
 *
 * It runs in one of three ways:
 *
 *   - XARCH_MODE=emul (under qemu-user, where rseq is ENOSYS): the harness plays the kernel. Every
 *     worker thread gets a private fake `struct rseq` with a fake CPU id, a signal storm interrupts
 *     the workers, and the SIGUSR1 handler does what the kernel does on signal delivery: read
 *     rseq_cs, validate the descriptor, and if the interrupted PC is inside [start_ip, post_commit),
 *     check the signature at abort_ip - 4, rewrite the PC in the ucontext to abort_ip, clear
 *     rseq_cs. The handler then acts as "another task on the same CPU": it runs a section on the
 *     same per-CPU data and migrates the thread to its other fake CPU. qemu-user must run with
 *     one instruction per translation block so a signal can land between any two instructions.
 *   - as PID 1 of a real kernel (XARCH_MODE=kernel on the command line): a supervisor that runs the
 *     test process twice (once adopting glibc's rseq area, once with
 *     GLIBC_TUNABLES=glibc.pthread.rseq=0 so the harness registers its own), reports child crashes
 *     (a bad signature or descriptor is a SIGSEGV from the kernel), then powers the machine off.
 *   - XARCH_MODE=kernel XARCH_ROLE=glibc|self as a normal process: the test process itself (this is
 *     also how the native x86_64 row runs on the host kernel).
 *
 * Output: one `XARCH-TEST <name> PASS|FAIL <detail>` line per check, `XARCH-INFO` lines, and
 * `XARCH-END` when the process (or the supervisor) finished. xarch/run counts those lines.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

/* ---- per-architecture facts: signature (rseq-facts.md section 4) and the PC in a ucontext ---- */
/* INSN_ALIGN: required alignment of start_ip/abort_ip (instruction alignment; arm32: A32 state). */
#if defined(__x86_64__)
#define INSN_ALIGN 1
#define XARCH_SIG 0x53053053u
#define UC_PC(uc) ((uc)->uc_mcontext.gregs[REG_RIP])
#elif defined(__aarch64__)
#define INSN_ALIGN 4
#define XARCH_SIG 0xd428bc00u
#define UC_PC(uc) ((uc)->uc_mcontext.pc)
#elif defined(__arm__)
#define INSN_ALIGN 4
#define XARCH_SIG 0xe7f5def3u
#define UC_PC(uc) ((uc)->uc_mcontext.arm_pc)
#elif defined(__riscv) && __riscv_xlen == 64
#define INSN_ALIGN 2
#define XARCH_SIG 0xf1401073u
#define UC_PC(uc) ((uc)->uc_mcontext.__gregs[0]) /* REG_PC */
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
#define INSN_ALIGN 4
#define XARCH_SIG 0x0fe5000bu
#define UC_PC(uc) ((uc)->uc_mcontext.gp_regs[32]) /* PT_NIP */
#elif defined(__s390x__)
#define INSN_ALIGN 2
#define XARCH_SIG 0xB2FF0FFFu
#define UC_PC(uc) ((uc)->uc_mcontext.psw.addr)
#elif defined(__loongarch__) && __loongarch_grlen == 64
#define INSN_ALIGN 4
#define XARCH_SIG 0x002a0010u
#define UC_PC(uc) ((uc)->uc_mcontext.__pc)
#else
#error "unsupported architecture"
#endif

#ifndef SYS_rseq
#error "SYS_rseq missing from the libc headers"
#endif

/* ---- kernel ABI (rseq-facts.md sections 1 and 3) ---- */
struct xrseq {
    uint32_t cpu_id_start;
    uint32_t cpu_id;
    uint64_t rseq_cs; /* on 32-bit arm the sections store the low word only; the high word stays 0 */
    uint32_t flags;
    uint32_t node_id;
    uint32_t mm_cid;
    uint32_t slice_ctrl;
} __attribute__((aligned(32)));

struct xrseq_cs {
    uint32_t version;
    uint32_t flags;
    uint64_t start_ip;
    uint64_t post_commit_offset;
    uint64_t abort_ip;
};

/* glibc >= 2.35 (static link: resolved directly; every glibc used here has them) */
extern const ptrdiff_t __rseq_offset;
extern const unsigned int __rseq_size;

/* Linker-made bounds of the sections the critical sections emit into. */
extern const uint64_t __start___rseq_cs_ptr_array[], __stop___rseq_cs_ptr_array[];
extern const uint64_t __start___rseq_exit_point_array[], __stop___rseq_exit_point_array[];

/* ---- the section ABI (README.md); implemented by sections/<arch>.rs ---- */
enum { ST_COMMITTED = 0, ST_ABORTED = 1, ST_BAD_INDEX = 2, ST_EMPTY = 3 };
size_t counter_inc(void *area, void *base, size_t stride, size_t len);
size_t counter_inc_unarmed(void *area, void *base, size_t stride, size_t len);
size_t stack_push(void *area, void *base, size_t stride, size_t len, void *node);
size_t stack_pop(void *area, void *base, size_t stride, size_t len, void **out);

/* ---- output ---- */
static const char *g_prefix = "?"; /* emul, kernel-glibc, kernel-self */
static int g_passed, g_failed;

static void say(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    for (int off = 0; off < n;) {
        ssize_t w = write(1, buf + off, (size_t)(n - off));
        if (w <= 0)
            break;
        off += (int)w;
    }
}

static void report(const char *name, int ok, const char *fmt, ...)
{
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    say("XARCH-TEST %s/%s %s %s", g_prefix, name, ok ? "PASS" : "FAIL", detail);
    if (ok)
        g_passed++;
    else
        g_failed++;
}

/* Async-signal-safe fatal exit (used by the emulated kernel, which would SIGSEGV the process). */
static void fatal(const char *msg)
{
    say("XARCH-TEST %s/emulated-kernel FAIL %s", g_prefix, msg);
    _exit(97);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned long env_ul(const char *name, unsigned long dflt)
{
    const char *s = getenv(name);
    return s && *s ? strtoul(s, NULL, 0) : dflt;
}

/* ---- registration layer: which `struct rseq` a thread passes to the sections ---- */
enum { REG_EMUL, REG_GLIBC, REG_SELF };
static int g_reg;
static int g_emul;

static __thread struct xrseq tls_area; /* fake area (emul) or own registration (self) */
static __thread struct xrseq *cur_area;
static __thread int tls_registered;

/* The thread pointer glibc's __rseq_offset is relative to (gcc 12 has no builtin for ppc64). */
static void *thread_pointer(void)
{
#if defined(__powerpc64__)
    void *tp;
    __asm__("mr %0, 13" : "=r"(tp));
    return tp;
#else
    return __builtin_thread_pointer();
#endif
}

/* Attach the calling thread; `fake_cpu` is only used by the emulated kernel. 0 on success. */
static int thread_attach(unsigned fake_cpu)
{
    switch (g_reg) {
    case REG_EMUL:
        memset(&tls_area, 0, sizeof tls_area);
        tls_area.cpu_id_start = fake_cpu;
        tls_area.cpu_id = fake_cpu;
        cur_area = &tls_area;
        return 0;
    case REG_GLIBC:
        cur_area = (struct xrseq *)((char *)thread_pointer() + __rseq_offset);
        return (int32_t)cur_area->cpu_id < 0 ? -1 : 0;
    default:
        if (!tls_registered) {
            if (syscall(SYS_rseq, &tls_area, 32, 0, XARCH_SIG) != 0)
                return -1;
            tls_registered = 1;
        }
        cur_area = &tls_area;
        return 0;
    }
}

/* Unregister an own area before its TLS goes away (the kernel would keep writing into it). */
static void thread_detach(void)
{
    if (g_reg == REG_SELF && tls_registered) {
        syscall(SYS_rseq, &tls_area, 32, 1 /* RSEQ_FLAG_UNREGISTER */, XARCH_SIG);
        tls_registered = 0;
    }
    cur_area = NULL;
}

static void emul_set_cpu(unsigned cpu)
{
    cur_area->cpu_id_start = cpu;
    cur_area->cpu_id = cpu;
}

/* Pin the calling thread (real kernel only) so single-threaded checks see one CPU. */
static void pin_to(int cpu)
{
    if (g_emul)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (cpu < 0) {
        for (int i = 0; i < CPU_SETSIZE; i++)
            CPU_SET(i, &set);
    } else {
        CPU_SET(cpu, &set);
    }
    sched_setaffinity(0, sizeof set, &set);
    sched_yield();
}

/* ---- per-CPU data ---- */
#define STRIDE 128 /* one padded slot per CPU: counter, or stack head */
static size_t g_len;   /* number of slots: CPUs (kernel) or 2 fake CPUs per worker (emul) */
static char *g_base;

struct node {
    struct node *next; /* first word: the sections link through it */
    uint32_t magic;
    uint32_t busy; /* 1 while some thread holds the node popped: detects duplication at once */
    uint32_t seen;
};
#define NODE_MAGIC 0x5e9a11edu
static struct node *g_nodes;
static size_t g_nnodes;

/* ---- workers, the signal storm and the handler ---- */
enum { T_COUNTER, T_CONTROL, T_STACK };
static int g_test;
static volatile int g_stop; /* set by the storm thread when the test's time is up */

struct worker {
    pthread_t tid;
    unsigned idx;
    volatile int done;
    /* written by the worker only */
    unsigned long commits, aborts, bad, empties, dups, attach_failed;
    /* written by its signal handler only (SIGUSR1 does not nest) */
    unsigned long h_signals, h_commits, h_aborts, h_bad, h_dups, em_aborts;
};
static __thread struct worker *tls_worker;
static pthread_barrier_t g_start;

/* The emulated kernel (qemu-user): what Linux does for a registered thread on signal delivery. */
static void emulate_kernel(ucontext_t *uc, struct worker *w)
{
    struct xrseq *a = cur_area;
    uint64_t ptr = a->rseq_cs;
    if (!ptr)
        return;
    const struct xrseq_cs *cs = (const struct xrseq_cs *)(uintptr_t)ptr;
    /* The kernel rejects (SIGSEGV) a descriptor with an unknown version or an abort_ip inside. */
    if (cs->version != 0 || cs->flags != 0)
        fatal("descriptor version/flags not 0");
    if (cs->abort_ip - cs->start_ip < cs->post_commit_offset)
        fatal("abort_ip inside the critical section");
    uint64_t pc = (uint64_t)UC_PC(uc);
    if (pc - cs->start_ip < cs->post_commit_offset) {
        uint32_t sig;
        memcpy(&sig, (const void *)(uintptr_t)(cs->abort_ip - 4), sizeof sig);
        if (sig != XARCH_SIG)
            fatal("signature before abort_ip does not match");
        UC_PC(uc) = (uintptr_t)cs->abort_ip;
        w->em_aborts++;
    }
    a->rseq_cs = 0; /* cleared whether or not the PC was inside, as the kernel does */
}

static struct node *pop_retry(unsigned long *aborts, unsigned long *bad, unsigned long *dups)
{
    void *n;
    for (;;) {
        size_t s = stack_pop(cur_area, g_base, STRIDE, g_len, &n);
        if (s == ST_COMMITTED)
            break;
        if (s == ST_ABORTED) {
            (*aborts)++;
            continue;
        }
        if (s != ST_EMPTY)
            (*bad)++;
        return NULL;
    }
    struct node *nd = n;
    if (nd->magic != NODE_MAGIC || __atomic_exchange_n(&nd->busy, 1, __ATOMIC_ACQ_REL))
        (*dups)++; /* popped something that is not a free node, or a node someone else holds */
    return nd;
}

static void push_retry(struct node *nd, unsigned long *aborts, unsigned long *bad)
{
    __atomic_store_n(&nd->busy, 0, __ATOMIC_RELEASE);
    for (;;) {
        size_t s = stack_push(cur_area, g_base, STRIDE, g_len, nd);
        if (s == ST_COMMITTED)
            return;
        if (s == ST_ABORTED) {
            (*aborts)++;
            continue;
        }
        (*bad)++; /* the node is lost: the stack check will report it */
        return;
    }
}

static void on_sigusr1(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    (void)si;
    struct worker *w = tls_worker;
    if (!w)
        return;
    int saved_errno = errno;
    w->h_signals++;
    if (g_emul)
        emulate_kernel(ucv, w);
    /* "Another task ran on this CPU": touch the same per-CPU data with an armed section. */
    if (g_test == T_STACK) {
        struct node *nd = pop_retry(&w->h_aborts, &w->h_bad, &w->h_dups);
        if (g_emul) /* ... and resume on the thread's other fake CPU (a migration) */
            emul_set_cpu(cur_area->cpu_id ^ 1u);
        if (nd)
            push_retry(nd, &w->h_aborts, &w->h_bad);
    } else {
        for (;;) {
            size_t s = counter_inc(cur_area, g_base, STRIDE, g_len);
            if (s == ST_COMMITTED) {
                w->h_commits++;
                break;
            }
            if (s == ST_ABORTED) {
                w->h_aborts++;
                continue;
            }
            w->h_bad++;
            break;
        }
        if (g_emul)
            emul_set_cpu(cur_area->cpu_id ^ 1u);
    }
    errno = saved_errno;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    if (thread_attach(2 * w->idx) != 0) {
        w->attach_failed = 1;
        pthread_barrier_wait(&g_start);
        w->done = 1;
        return NULL;
    }
    tls_worker = w;
    pthread_barrier_wait(&g_start);
    while (!g_stop) {
        if (g_test == T_STACK) {
            struct node *nd = pop_retry(&w->aborts, &w->bad, &w->dups);
            if (!nd) {
                w->empties++;
                continue;
            }
            push_retry(nd, &w->aborts, &w->bad);
            w->commits++;
            continue;
        }
        for (;;) {
            size_t s = g_test == T_COUNTER ? counter_inc(cur_area, g_base, STRIDE, g_len)
                                           : counter_inc_unarmed(cur_area, g_base, STRIDE, g_len);
            if (s == ST_COMMITTED) {
                w->commits++;
                break;
            }
            if (s == ST_ABORTED) {
                w->aborts++;
                continue;
            }
            w->bad++;
            break;
        }
    }
    /* Stop taking signals before the area goes away, then leave. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    tls_worker = NULL;
    thread_detach();
    w->done = 1;
    return NULL;
}

struct totals {
    unsigned long commits, aborts, bad, empties, dups, attach_failed;
    unsigned long h_signals, h_commits, h_aborts, h_bad, h_dups, em_aborts;
    unsigned long sent;
    double secs;
};

/* Run `nthreads` workers of test `test` for `secs` seconds under a SIGUSR1 storm (the calling
 * thread sends SIGUSR1 to every worker, then sleeps `storm_ns`); sum their statistics. */
static struct totals run_workers(int test, unsigned nthreads, double secs, long storm_ns)
{
    struct totals t;
    memset(&t, 0, sizeof t);
    struct worker *ws = calloc(nthreads, sizeof *ws);
    g_test = test;
    g_stop = 0;
    pthread_barrier_init(&g_start, NULL, nthreads + 1);
    uint64_t t0 = now_ns();
    for (unsigned i = 0; i < nthreads; i++) {
        ws[i].idx = i;
        pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]);
    }
    pthread_barrier_wait(&g_start);
    /* Past `secs`, a test goes on (up to 4x) until it has seen what it must see: an abort (armed
     * tests) or a lost update (control), so a slow or loaded host makes the run longer instead of
     * flaky. Lost updates are visible while running: commits are counted after their store, so
     * reading the counters first and the slots second can only make the slot sum look larger. */
    uint64_t start = now_ns();
    uint64_t deadline = start + (uint64_t)(secs * 1e9), hard = start + (uint64_t)(4 * secs * 1e9);
    for (;;) {
        if (!g_stop && now_ns() >= deadline) {
            unsigned long seen = 0, counted = 0, slots = 0;
            for (unsigned i = 0; i < nthreads; i++) { /* racy reads of statistics: see above */
                seen += *(volatile unsigned long *)&ws[i].aborts;
                counted += *(volatile unsigned long *)&ws[i].commits + *(volatile unsigned long *)&ws[i].h_commits;
            }
            for (size_t i = 0; test == T_CONTROL && i < g_len; i++)
                slots += *(volatile size_t *)(g_base + i * STRIDE);
            int enough = test == T_CONTROL ? slots < counted : seen > 0;
            if (enough || now_ns() >= hard)
                g_stop = 1;
        }
        int running = 0;
        for (unsigned i = 0; i < nthreads; i++) {
            if (!ws[i].done) {
                running = 1;
                if (pthread_kill(ws[i].tid, SIGUSR1) == 0)
                    t.sent++;
            }
        }
        if (!running)
            break;
        struct timespec ts = {0, storm_ns};
        nanosleep(&ts, NULL);
    }
    for (unsigned i = 0; i < nthreads; i++) {
        pthread_join(ws[i].tid, NULL);
        struct worker *w = &ws[i];
        t.commits += w->commits;
        t.aborts += w->aborts;
        t.bad += w->bad;
        t.empties += w->empties;
        t.dups += w->dups;
        t.attach_failed += w->attach_failed;
        t.h_signals += w->h_signals;
        t.h_commits += w->h_commits;
        t.h_aborts += w->h_aborts;
        t.h_bad += w->h_bad;
        t.h_dups += w->h_dups;
        t.em_aborts += w->em_aborts;
    }
    t.secs = (double)(now_ns() - t0) / 1e9;
    pthread_barrier_destroy(&g_start);
    free(ws);
    return t;
}

static unsigned long slot_sum(void)
{
    unsigned long s = 0;
    for (size_t i = 0; i < g_len; i++)
        s += *(size_t *)(g_base + i * STRIDE);
    return s;
}

static void reset_slots(void)
{
    memset(g_base, 0, g_len * STRIDE);
}

/* ---- checks ---- */

/* Descriptor tables, read back from the linked binary. */
static void check_tables(void)
{
    struct fn {
        const char *name;
        uintptr_t addr, end;
        int descs, armed;
    } fns[] = {
        {"counter_inc", (uintptr_t)counter_inc, 0, 0, 1},
        {"counter_inc_unarmed", (uintptr_t)counter_inc_unarmed, 0, 0, 0},
        {"stack_push", (uintptr_t)stack_push, 0, 0, 1},
        {"stack_pop", (uintptr_t)stack_pop, 0, 0, 1},
    };
    const int nf = sizeof fns / sizeof fns[0];
    /* A function's extent: up to the next of these functions, at most 1 KiB. */
    for (int i = 0; i < nf; i++) {
        fns[i].end = fns[i].addr + 1024;
        for (int j = 0; j < nf; j++)
            if (fns[j].addr > fns[i].addr && fns[j].addr < fns[i].end)
                fns[i].end = fns[j].addr;
    }
    int ok = 1, ndesc = 0;
    char why[200] = "";
    for (const uint64_t *p = __start___rseq_cs_ptr_array; p < __stop___rseq_cs_ptr_array; p++) {
        const struct xrseq_cs *cs = (const struct xrseq_cs *)(uintptr_t)*p;
        ndesc++;
        uint32_t sig;
        memcpy(&sig, (const void *)(uintptr_t)(cs->abort_ip - 4), sizeof sig);
        if ((uintptr_t)cs % 32 != 0)
            ok = 0, snprintf(why, sizeof why, "descriptor %p not 32-byte aligned", (void *)cs);
        else if (cs->version != 0 || cs->flags != 0)
            ok = 0, snprintf(why, sizeof why, "descriptor %p version/flags not 0", (void *)cs);
        else if (cs->post_commit_offset == 0 || cs->post_commit_offset > 1024)
            ok = 0, snprintf(why, sizeof why, "descriptor %p post_commit_offset %llu", (void *)cs,
                             (unsigned long long)cs->post_commit_offset);
        else if (cs->abort_ip - cs->start_ip < cs->post_commit_offset)
            ok = 0, snprintf(why, sizeof why, "descriptor %p abort_ip inside the section", (void *)cs);
        else if (cs->start_ip % INSN_ALIGN || cs->abort_ip % INSN_ALIGN)
            ok = 0, snprintf(why, sizeof why, "descriptor %p: start_ip 0x%llx / abort_ip 0x%llx not %d-byte aligned",
                             (void *)cs, (unsigned long long)cs->start_ip, (unsigned long long)cs->abort_ip,
                             INSN_ALIGN);
        else if (sig != XARCH_SIG)
            ok = 0, snprintf(why, sizeof why, "descriptor %p signature 0x%08x != 0x%08x", (void *)cs, sig,
                             XARCH_SIG);
        for (int i = 0; i < nf; i++)
            if (cs->start_ip >= fns[i].addr && cs->start_ip < fns[i].end)
                fns[i].descs++;
    }
    for (int i = 0; ok && i < nf; i++)
        if (fns[i].descs != fns[i].armed)
            ok = 0, snprintf(why, sizeof why, "%s has %d descriptors, expected %d", fns[i].name, fns[i].descs,
                             fns[i].armed);
    report("descriptors", ok, "%d descriptors in __rseq_cs_ptr_array%s%s", ndesc, ok ? "" : ": ", why);

    ok = 1;
    int nexit = 0;
    why[0] = 0;
    for (const uint64_t *p = __start___rseq_exit_point_array; p + 1 < __stop___rseq_exit_point_array; p += 2) {
        nexit++;
        const struct xrseq_cs *owner = NULL;
        for (const uint64_t *q = __start___rseq_cs_ptr_array; q < __stop___rseq_cs_ptr_array; q++) {
            const struct xrseq_cs *cs = (const struct xrseq_cs *)(uintptr_t)*q;
            if (cs->start_ip == p[0])
                owner = cs;
        }
        if (!owner)
            ok = 0, snprintf(why, sizeof why, "exit pair %d: start_ip matches no descriptor", nexit);
        else if (p[1] - owner->start_ip < owner->post_commit_offset)
            ok = 0, snprintf(why, sizeof why, "exit pair %d: exit_ip inside the section", nexit);
    }
    if (ok && nexit < ndesc)
        ok = 0, snprintf(why, sizeof why, "fewer exit pairs (%d) than descriptors", nexit);
    report("exit-points", ok, "%d (start, exit) pairs in __rseq_exit_point_array%s%s", nexit, ok ? "" : ": ",
           why);
}

/* Single-threaded semantics, with the thread pinned (kernel) or on a fixed fake CPU (emul). */
static void check_functional(void)
{
    pin_to(0);
    if (g_emul)
        emul_set_cpu(0);
    unsigned cpu = cur_area->cpu_id;
    reset_slots();
    char why[200] = "";
    int ok = 1;

    /* bad index: len 0 makes every CPU out of range; nothing may be stored */
    struct node a = {0, NODE_MAGIC, 0, 0}, b = {0, NODE_MAGIC, 0, 0};
    void *got = &a;
    size_t s1 = counter_inc(cur_area, g_base, STRIDE, 0);
    size_t s2 = counter_inc_unarmed(cur_area, g_base, STRIDE, 0);
    size_t s3 = stack_push(cur_area, g_base, STRIDE, 0, &b);
    size_t s4 = stack_pop(cur_area, g_base, STRIDE, 0, &got);
    if (s1 != ST_BAD_INDEX || s2 != ST_BAD_INDEX || s3 != ST_BAD_INDEX || s4 != ST_BAD_INDEX)
        ok = 0, snprintf(why, sizeof why, "statuses %zu %zu %zu %zu, expected 2", s1, s2, s3, s4);
    else if (slot_sum() != 0 || b.next != NULL || got != &a)
        ok = 0, snprintf(why, sizeof why, "a section stored despite the bad index");
    report("bad-index", ok, "all four sections exit with status 2 when cpu_id >= len%s%s", ok ? "" : ": ", why);

    /* counter: one committed increment lands in this CPU's slot; the unarmed twin never arms */
    ok = 1;
    cur_area->rseq_cs = 0;
    size_t s = counter_inc(cur_area, g_base, STRIDE, g_len);
    while (s == ST_ABORTED)
        s = counter_inc(cur_area, g_base, STRIDE, g_len);
    uint64_t armed_cs = cur_area->rseq_cs;
    cur_area->rseq_cs = 0;
    size_t su = counter_inc_unarmed(cur_area, g_base, STRIDE, g_len);
    uint64_t unarmed_cs = cur_area->rseq_cs;
    size_t *slot = (size_t *)(g_base + cpu * STRIDE);
    if (s != ST_COMMITTED || su != ST_COMMITTED)
        ok = 0, snprintf(why, sizeof why, "statuses %zu/%zu, expected 0", s, su);
    else if (*slot != 2 || slot_sum() != 2)
        ok = 0, snprintf(why, sizeof why, "slot %u holds %zu (sum %lu), expected 2", cpu, *slot, slot_sum());
    else if (unarmed_cs != 0)
        ok = 0, snprintf(why, sizeof why, "counter_inc_unarmed stored rseq_cs");
    else if (g_emul && armed_cs == 0)
        ok = 0, snprintf(why, sizeof why, "counter_inc did not store rseq_cs");
    report("counter-functional", ok, "armed and unarmed increment slot %u once each%s%s", cpu, ok ? "" : ": ",
           why);

    /* stack: empty exit, LIFO order, node->next written by push */
    ok = 1;
    reset_slots();
    void *p1 = NULL, *p2 = NULL, *p3 = NULL, *p0 = NULL;
    size_t e0, u1, u2, o1, o2, e3;
    do e0 = stack_pop(cur_area, g_base, STRIDE, g_len, &p0); while (e0 == ST_ABORTED);
    do u1 = stack_push(cur_area, g_base, STRIDE, g_len, &a); while (u1 == ST_ABORTED);
    do u2 = stack_push(cur_area, g_base, STRIDE, g_len, &b); while (u2 == ST_ABORTED);
    int linked = b.next == &a && *(void **)(g_base + cpu * STRIDE) == &b;
    do o1 = stack_pop(cur_area, g_base, STRIDE, g_len, &p1); while (o1 == ST_ABORTED);
    do o2 = stack_pop(cur_area, g_base, STRIDE, g_len, &p2); while (o2 == ST_ABORTED);
    do e3 = stack_pop(cur_area, g_base, STRIDE, g_len, &p3); while (e3 == ST_ABORTED);
    if (e0 != ST_EMPTY || e3 != ST_EMPTY || p0 || p3)
        ok = 0, snprintf(why, sizeof why, "pop of an empty stack gave %zu/%zu, expected 3 and no store", e0, e3);
    else if (u1 || u2 || o1 || o2)
        ok = 0, snprintf(why, sizeof why, "statuses %zu %zu %zu %zu, expected 0", u1, u2, o1, o2);
    else if (!linked || p1 != &b || p2 != &a)
        ok = 0, snprintf(why, sizeof why, "not LIFO or badly linked");
    report("stack-functional", ok, "empty compare exit, push/push/pop/pop in LIFO order%s%s", ok ? "" : ": ",
           why);
    pin_to(-1);
}

static void check_counter(unsigned nthreads, double secs, long storm_ns)
{
    reset_slots();
    struct totals t = run_workers(T_COUNTER, nthreads, secs, storm_ns);
    unsigned long expect = t.commits + t.h_commits, sum = slot_sum();
    int ok = t.attach_failed == 0 && t.bad == 0 && t.h_bad == 0 && sum == expect && t.aborts > 0 &&
             (!g_emul || t.aborts == t.em_aborts);
    report("counter", ok,
           "%u threads: sum %lu expected %lu (%lu by workers, %lu by handlers); aborts %lu (handlers %lu, "
           "emulated %lu); signals %lu of %lu sent; bad %lu; %.2fs%s",
           nthreads, sum, expect, t.commits, t.h_commits, t.aborts, t.h_aborts, t.em_aborts, t.h_signals, t.sent,
           t.bad + t.h_bad, t.secs, t.aborts == 0 ? " (no abort observed: abort path unproven)" : "");
}

static void check_control(unsigned nthreads, double secs, long storm_ns)
{
    reset_slots();
    struct totals t = run_workers(T_CONTROL, nthreads, secs, storm_ns);
    unsigned long expect = t.commits + t.h_commits, sum = slot_sum();
    int ok = t.attach_failed == 0 && t.bad == 0 && t.aborts == 0 && sum < expect;
    report("control-unarmed", ok, "%u threads: sum %lu expected %lu: lost %ld updates%s; signals %lu; %.2fs",
           nthreads, sum, expect, (long)(expect - sum),
           sum >= expect ? " (a control that cannot fail: the counter test would prove nothing)" : "",
           t.h_signals, t.secs);
}

static void check_stack(unsigned nthreads, double secs, long storm_ns)
{
    /* Spread the nodes over all slots: pin (kernel) or set the fake CPU (emul), then push. */
    reset_slots();
    for (size_t i = 0; i < g_nnodes; i++) {
        g_nodes[i] = (struct node){0, NODE_MAGIC, 0, 0};
    }
    unsigned ncpu = g_emul ? (unsigned)g_len : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    for (size_t i = 0; i < g_nnodes; i++) {
        unsigned cpu = (unsigned)(i % ncpu);
        if (g_emul)
            emul_set_cpu(cpu);
        else if (i < ncpu)
            pin_to((int)cpu);
        unsigned long a = 0, b = 0;
        if (!g_emul && i >= ncpu)
            pin_to((int)cpu);
        push_retry(&g_nodes[i], &a, &b);
    }
    pin_to(-1);
    if (g_emul)
        emul_set_cpu(0);
    struct totals t = run_workers(T_STACK, nthreads, secs, storm_ns);
    /* Walk every slot's list: each node exactly once, no cycles, nothing lost. */
    size_t found = 0, twice = 0, foreign = 0;
    for (size_t c = 0; c < g_len; c++) {
        size_t steps = 0;
        for (struct node *n = *(struct node **)(g_base + c * STRIDE); n && steps <= g_nnodes; n = n->next) {
            steps++;
            if (n < g_nodes || n >= g_nodes + g_nnodes) {
                foreign++;
                break;
            }
            if (n->seen++)
                twice++;
            found++;
        }
    }
    int ok = t.attach_failed == 0 && t.bad == 0 && t.h_bad == 0 && t.dups == 0 && t.h_dups == 0 &&
             found == g_nnodes && twice == 0 && foreign == 0 && t.aborts > 0 &&
             (!g_emul || t.aborts == t.em_aborts);
    report("stack", ok,
           "%u threads, %lu pop+push, %zu nodes: found %zu, twice %zu, foreign %zu, held twice %lu; "
           "aborts %lu (handlers %lu, emulated %lu); empty %lu; signals %lu; %.2fs",
           nthreads, t.commits, g_nnodes, found, twice, foreign, t.dups + t.h_dups, t.aborts, t.h_aborts, t.em_aborts,
           t.empties, t.h_signals, t.secs);
}

/* ---- the test process ---- */
static int test_process(const char *mode, const char *role)
{
    g_emul = strcmp(mode, "emul") == 0;
    static char prefix[32];
    snprintf(prefix, sizeof prefix, "%s%s%s", g_emul ? "emul" : "kernel", g_emul ? "" : "-", g_emul ? "" : role);
    g_prefix = prefix;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigusr1;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);

    unsigned ncpu = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    unsigned nthreads = (unsigned)env_ul("XARCH_THREADS", g_emul ? 4 : 4 * ncpu);
    double secs = (double)env_ul("XARCH_MS", g_emul ? 300 : 400) / 1000.0; /* per stress test */
    long storm_ns = (long)env_ul("XARCH_STORM_US", 20) * 1000;

    /* Registration. */
    if (g_emul) {
        g_reg = REG_EMUL;
        long r = syscall(SYS_rseq, NULL, 0, 0, 0);
        say("XARCH-INFO %s: emulated kernel (rseq syscall: %s; glibc __rseq_size %u)", prefix,
            r < 0 && errno == ENOSYS ? "ENOSYS" : "available", __rseq_size);
        g_len = 2 * nthreads;
    } else {
        int self = strcmp(role, "self") == 0;
        int ok;
        char why[200];
        if (self && __rseq_size > 0) {
            ok = 0;
            snprintf(why, sizeof why, "GLIBC_TUNABLES=glibc.pthread.rseq=0 ignored: glibc registered (size %u)",
                     __rseq_size);
            g_reg = REG_GLIBC;
        } else if (__rseq_size > 0) {
            g_reg = REG_GLIBC;
            ok = thread_attach(0) == 0;
            snprintf(why, sizeof why, "adopted glibc's area (__rseq_size %u, __rseq_offset %td), cpu_id %u",
                     __rseq_size, __rseq_offset, ok ? cur_area->cpu_id : 0);
        } else {
            g_reg = REG_SELF;
            errno = 0;
            ok = thread_attach(0) == 0;
            snprintf(why, sizeof why, "%sself-registered 32-byte TLS area: %s, cpu_id %u",
                     self ? "" : "glibc did not register; ", ok ? "ok" : strerror(errno),
                     ok ? cur_area->cpu_id : 0);
        }
        report("registration", ok, "%s", why);
        if (!ok) {
            say("XARCH-END");
            return 1;
        }
        g_len = (size_t)sysconf(_SC_NPROCESSORS_CONF);
    }
    if (g_emul && thread_attach(0) != 0)
        return 1;
    g_base = aligned_alloc(STRIDE, g_len * STRIDE);
    g_nnodes = 64 * g_len;
    g_nodes = calloc(g_nnodes, sizeof *g_nodes);

    check_tables();
    check_functional();
    check_counter(nthreads, secs, storm_ns);
    check_control(nthreads, secs, storm_ns);
    check_stack(nthreads, secs, storm_ns);
    thread_detach();
    say("XARCH-INFO %s: %d passed, %d failed", prefix, g_passed, g_failed);
    say("XARCH-END");
    return g_failed ? 1 : 0;
}

/* ---- PID 1 on a real kernel: run the test process twice, report crashes, power off ---- */
static int run_child(const char *role, char **envp)
{
    pid_t pid = fork();
    if (pid == 0) {
        char *env[64];
        int n = 0;
        for (char **e = envp; *e && n < 56; e++)
            if (strncmp(*e, "XARCH_ROLE=", 11) && strncmp(*e, "GLIBC_TUNABLES=", 15))
                env[n++] = *e;
        char role_env[64];
        snprintf(role_env, sizeof role_env, "XARCH_ROLE=%s", role);
        env[n++] = role_env;
        if (strcmp(role, "self") == 0)
            env[n++] = "GLIBC_TUNABLES=glibc.pthread.rseq=0";
        env[n] = NULL;
        char *argv[] = {"/init", NULL};
        execve("/init", argv, env);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st)) {
        say("XARCH-TEST kernel-%s/process FAIL killed by signal %d (%s)", role, WTERMSIG(st),
            strsignal(WTERMSIG(st)));
        return 1;
    }
    if (WEXITSTATUS(st) == 97 || WEXITSTATUS(st) == 127) {
        say("XARCH-TEST kernel-%s/process FAIL exit status %d", role, WEXITSTATUS(st));
        return 1;
    }
    return 0;
}

/* Iterations per millisecond of a straight-line block of dependent additions. */
static double loop_rate(void)
{
    uint64_t t0 = now_ns();
    unsigned long x = 1;
    for (int i = 0; i < 20000; i++) {
#define XARCH_STEP x = x * 3 + 1; __asm__ volatile("" : "+r"(x)) /* the barrier keeps steps apart */
        XARCH_STEP; XARCH_STEP; XARCH_STEP; XARCH_STEP; XARCH_STEP; XARCH_STEP; XARCH_STEP; XARCH_STEP;
        XARCH_STEP; XARCH_STEP; XARCH_STEP; XARCH_STEP; XARCH_STEP; XARCH_STEP; XARCH_STEP; XARCH_STEP;
#undef XARCH_STEP
    }
    return 20000.0 / ((double)(now_ns() - t0 + 1) / 1e6);
}

static int init_main(char **envp)
{
    struct utsname u;
    uname(&u);
    say("XARCH-INFO kernel %s %s on %s, %ld CPUs online", u.sysname, u.release, u.machine,
        sysconf(_SC_NPROCESSORS_ONLN));
    /* xarch/run switches QEMU to one instruction per translation block when it reads this line, so
     * interrupts (preemption, signal IPIs) can land between any two instructions during the tests
     * but the boot ran at full speed. The switch is observed, not assumed: a straight-line loop
     * slows down several times once every instruction is its own block (the runner may be late on
     * a loaded host). If it never happens, the unarmed control finds no lost update and fails the
     * run: never silent. */
    if (getenv("XARCH_HANDSHAKE")) {
        double base = 0;
        for (int i = 0; i < 5; i++) {
            double r = loop_rate();
            base = r > base ? r : base;
        }
        say("XARCH-READY");
        uint64_t until = now_ns() + 60ull * 1000000000u;
        double r = base;
        while (now_ns() < until && (r = loop_rate()) > base / 4) {
            struct timespec ts = {0, 20000000};
            nanosleep(&ts, NULL);
        }
        say("XARCH-INFO single-step %s: loop rate %.0f -> %.0f per ms", r <= base / 4 ? "observed" : "NOT observed",
            base, r);
    }
    run_child("glibc", envp);
    run_child("self", envp);
    say("XARCH-END");
    sync();
    reboot(RB_POWER_OFF);
    for (;;)
        pause();
    return 0;
}

int main(int argc, char **argv, char **envp)
{
    (void)argc;
    (void)argv;
    const char *mode = getenv("XARCH_MODE");
    const char *role = getenv("XARCH_ROLE");
    if (getpid() == 1 && !role)
        return init_main(envp);
    if (!mode) {
        say("usage: XARCH_MODE=emul|kernel [XARCH_ROLE=glibc|self] %s", argv[0]);
        return 2;
    }
    return test_process(mode, role ? role : "glibc");
}
