/* /init of the initramfs that xarch/test boots: runs the workspace's Rust test binaries natively on a
 * real kernel, twice each (glibc's rseq registration, then GLIBC_TUNABLES=glibc.pthread.rseq=0 so the
 * runtime registers its own area), then powers off.
 *
 * Built statically with the target's cross gcc. Reads /xtest/manifest: one test binary per line,
 * `<name> <absolute path>` (the binaries sit at their build-host paths, so `CARGO_BIN_EXE_*` and
 * `CARGO_TARGET_TMPDIR` paths compiled into the tests are valid here too). Kernel command-line
 * `KEY=VALUE` words arrive in the environment:
 *
 *   XTEST_PASSES        passes to run, comma-separated: `glibc,self` (default) or a subset
 *   XTEST_GLIBC_OWNER   who owns the area in the `glibc` pass: `glibc` (default) or `runtime`
 *                       (glibc 2.36 does not register rseq on riscv64)
 *   XTEST_TIMEOUT       seconds per test binary and pass (default 900): then SIGKILL, counted as failed
 *   XTEST_HANDSHAKE=1   print XTEST-READY and wait until one-instruction-per-block is observed
 *   XTEST_ARGS          extra libtest arguments, `+`-separated (e.g. `--skip+foo`)
 *
 * Each test binary runs as `<path> --test-threads=1 --nocapture [XTEST_ARGS]` with
 * RSEQ_DSL_EXPECT_MODE=native and RSEQ_DSL_EXPECT_OWNER=<glibc|runtime>; its output goes to the console
 * between `XTEST-BEGIN <pass> <name>` and `XTEST-EXIT <pass> <name> <status>` lines. `XTEST-END` ends the
 * run; xarch/test treats a missing one as a crash or a hang.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void say(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof buf - 2)
        n = sizeof buf - 2;
    buf[n++] = '\n';
    (void)!write(1, buf, n);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

/* Iterations per millisecond of a straight-line block of dependent additions (as in harness.c). */
static double loop_rate(void)
{
    uint64_t t0 = now_ns();
    unsigned long x = 1;
    for (int i = 0; i < 20000; i++) {
#define XTEST_STEP x = x * 3 + 1; __asm__ volatile("" : "+r"(x))
        XTEST_STEP; XTEST_STEP; XTEST_STEP; XTEST_STEP; XTEST_STEP; XTEST_STEP; XTEST_STEP; XTEST_STEP;
        XTEST_STEP; XTEST_STEP; XTEST_STEP; XTEST_STEP; XTEST_STEP; XTEST_STEP; XTEST_STEP; XTEST_STEP;
#undef XTEST_STEP
    }
    return 20000.0 / ((double)(now_ns() - t0 + 1) / 1e6);
}

static void handshake(void)
{
    double base = 0;
    for (int i = 0; i < 5; i++) {
        double r = loop_rate();
        base = r > base ? r : base;
    }
    say("XTEST-READY");
    uint64_t until = now_ns() + 60ull * 1000000000u;
    double r = base;
    while (now_ns() < until && (r = loop_rate()) > base / 4) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    say("XTEST-INFO single-step %s: loop rate %.0f -> %.0f per ms", r <= base / 4 ? "observed" : "NOT observed",
        base, r);
}

#define MAX_ENV 96
#define MAX_ARGS 32

/* Runs one test binary in its own process group and prints how it ended. */
static void run_one(const char *pass, const char *name, const char *path, char **envp, int timeout_s)
{
    const char *owner = strcmp(pass, "self") == 0 ? "runtime" : getenv("XTEST_GLIBC_OWNER");
    if (!owner || !*owner)
        owner = "glibc";
    say("XTEST-BEGIN %s %s", pass, name);
    uint64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        char *env[MAX_ENV];
        int n = 0;
        for (char **e = envp; *e && n < MAX_ENV - 8; e++)
            if (strncmp(*e, "GLIBC_TUNABLES=", 15) && strncmp(*e, "RSEQ_DSL_EXPECT_", 16))
                env[n++] = *e;
        static char owner_env[64];
        snprintf(owner_env, sizeof owner_env, "RSEQ_DSL_EXPECT_OWNER=%s", owner);
        env[n++] = "RSEQ_DSL_EXPECT_MODE=native";
        env[n++] = owner_env;
        env[n++] = "PATH=/bin";
        env[n++] = "RUST_BACKTRACE=1";
        env[n++] = "TMPDIR=/tmp";
        if (strcmp(pass, "self") == 0)
            env[n++] = "GLIBC_TUNABLES=glibc.pthread.rseq=0";
        env[n] = NULL;
        char *argv[MAX_ARGS];
        int a = 0;
        argv[a++] = (char *)path;
        argv[a++] = "--test-threads=1";
        argv[a++] = "--nocapture";
        static char extra[1024];
        const char *x = getenv("XTEST_ARGS");
        if (x && *x) {
            snprintf(extra, sizeof extra, "%s", x);
            for (char *tok = strtok(extra, "+"); tok && a < MAX_ARGS - 1; tok = strtok(NULL, "+"))
                argv[a++] = tok;
        }
        argv[a] = NULL;
        execve(path, argv, env);
        say("exec %s: %s", path, strerror(errno));
        _exit(127);
    }
    int st = 0;
    int timed_out = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            st = 0x7f00;
            break;
        }
        if (now_ns() - t0 > (uint64_t)timeout_s * 1000000000u) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            timed_out = 1;
            break;
        }
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    /* Kill what is left of the group (e.g. a child the test leaked). */
    kill(-pid, SIGKILL);
    double secs = (now_ns() - t0) / 1e9;
    if (timed_out)
        say("XTEST-EXIT %s %s timeout %.1fs", pass, name, secs);
    else if (WIFSIGNALED(st))
        say("XTEST-EXIT %s %s signal-%d %.1fs", pass, name, WTERMSIG(st), secs);
    else
        say("XTEST-EXIT %s %s exit-%d %.1fs", pass, name, WEXITSTATUS(st), secs);
    while (waitpid(-1, NULL, WNOHANG) > 0) /* orphans PID 1 inherited */
        ;
}

int main(int argc, char **argv, char **envp)
{
    (void)argc;
    (void)argv;
    mkdir("/dev", 0755);
    mkdir("/proc", 0755);
    mkdir("/sys", 0755);
    mkdir("/tmp", 01777);
    if (mount("proc", "/proc", "proc", 0, NULL))
        say("XTEST-INFO mount /proc: %s", strerror(errno));
    if (mount("sysfs", "/sys", "sysfs", 0, NULL))
        say("XTEST-INFO mount /sys: %s", strerror(errno));
    if (mount("devtmpfs", "/dev", "devtmpfs", 0, NULL))
        say("XTEST-INFO mount /dev: %s", strerror(errno));
    /* No tmpfs on /tmp: the initramfs (rootfs) is writable RAM already, and test binaries built under
     * /tmp (XTEST_TARGET_DIR=/tmp/...) sit at their build paths there. */
    struct utsname u;
    uname(&u);
    say("XTEST-INFO kernel %s %s on %s, %ld CPUs online", u.sysname, u.release, u.machine,
        sysconf(_SC_NPROCESSORS_ONLN));
    if (getenv("XTEST_HANDSHAKE"))
        handshake();

    int timeout_s = getenv("XTEST_TIMEOUT") ? atoi(getenv("XTEST_TIMEOUT")) : 900;
    const char *passes_env = getenv("XTEST_PASSES");
    char passes[64];
    snprintf(passes, sizeof passes, "%s", passes_env && *passes_env ? passes_env : "glibc,self");

    static char manifest[65536];
    FILE *f = fopen("/xtest/manifest", "r");
    size_t len = f ? fread(manifest, 1, sizeof manifest - 1, f) : 0;
    if (f)
        fclose(f);
    manifest[len] = 0;
    if (!len)
        say("XTEST-INFO no /xtest/manifest");

    char *pass_save = NULL;
    for (char *pass = strtok_r(passes, ",", &pass_save); pass; pass = strtok_r(NULL, ",", &pass_save)) {
        static char copy[65536];
        memcpy(copy, manifest, len + 1);
        char *line_save = NULL;
        for (char *line = strtok_r(copy, "\n", &line_save); line; line = strtok_r(NULL, "\n", &line_save)) {
            char name[256], path[1024];
            if (sscanf(line, "%255s %1023s", name, path) == 2)
                run_one(pass, name, path, envp, timeout_s);
        }
    }
    say("XTEST-END");
    sync();
    reboot(RB_POWER_OFF);
    for (;;)
        pause();
    return 0;
}
