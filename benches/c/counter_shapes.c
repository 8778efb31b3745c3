/*
 * Where the nanoseconds of a per-CPU counter increment go (x86_64, glibc >= 2.35 registration).
 * Not part of the test suite; see docs/benchmarks/README.md, "Where the time goes".
 *
 *   gcc -O2 -o /tmp/counter_shapes benches/c/counter_shapes.c && /tmp/counter_shapes
 *
 * Every variant runs the same 11-instruction section (arm rseq_cs, read cpu_id inside, bounds
 * check, slot = base + cpu * stride, load/add/store commit). They differ only in where the
 * section's inputs come from: registers (hoisted out of the loop), or memory reloaded before every
 * section, as a Rust caller holding `&PerCpu` must do (the asm clobbers memory, so the compiler
 * cannot keep the handle's fields in registers across it).
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

extern const ptrdiff_t __rseq_offset;
extern const unsigned int __rseq_size;

struct slot { uint64_t v; char pad[120]; } __attribute__((aligned(128)));
static struct slot slots[1024];
struct handle { char *base; long stride; long len; };
static struct handle H = { (char *)slots, 128, 1024 };
static struct handle *volatile HP = &H;

#define N 200000000L

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static char *area(void)
{
	return (char *)__builtin_thread_pointer() + __rseq_offset;
}

/* The section; jumps to `abort` (after the signature) if the kernel aborts it. */
#define SECTION(r, b, s, l, abort)                                                          \
	__asm__ goto(".pushsection __rseq_cs, \"aw\"\n .balign 32\n"                        \
		     "3: .long 0, 0\n .quad 1f, 2f - 1f, 4f\n .popsection\n"                \
		     "lea 3b(%%rip), %%rax\n mov %%rax, 8(%[r])\n"                          \
		     "1: mov 4(%[r]), %%eax\n cmp %[l], %%rax\n jae 4f\n"                   \
		     "imul %[s], %%rax\n add %[b], %%rax\n"                                 \
		     "mov (%%rax), %%rcx\n add $1, %%rcx\n mov %%rcx, (%%rax)\n2:\n"        \
		     ".pushsection __rseq_failure, \"ax\"\n .byte 0x0f, 0xb9, 0x3d\n"       \
		     " .long 0x53053053\n4: jmp %l[" #abort "]\n .popsection\n"             \
		     : : [r] "r"(r), [b] "r"(b), [s] "r"(s), [l] "r"(l)                      \
		     : "rax", "rcx", "memory", "cc" : abort)

/* One increment: the section, restarted until it commits. */
static inline __attribute__((always_inline)) void increment(char *r, char *b, long s, long l)
{
again:
	SECTION(r, b, s, l, aborted);
	return;
aborted:
	goto again;
}

__attribute__((noinline)) static void hoisted(long n)
{
	char *r = area(), *b = H.base;
	long s = H.stride, l = H.len;
	for (long i = 0; i < n; i++)
		increment(r, b, s, l);
}

__attribute__((noinline)) static void reloaded(long n)
{
	struct handle *volatile *hpp = &HP;
	for (long i = 0; i < n; i++) {
		struct handle *h = *hpp;
		char *b;
		long s, l;
		/* Loads the compiler must redo after every section (memory clobber). */
		__asm__ volatile("mov (%3), %0\n mov 8(%3), %1\n mov 16(%3), %2"
				 : "=&r"(b), "=&r"(s), "=&r"(l) : "r"(h));
		increment(area(), b, s, l);
	}
}

__attribute__((noinline)) static void plain(long n)
{
	for (long i = 0; i < n; i++)
		__asm__ volatile("addq $1, %0" : "+m"(slots[0].v));
}

int main(void)
{
	static const struct { const char *name; void (*f)(long); } v[] = {
		{ "section, inputs in registers", hoisted },
		{ "section, handle reloaded each op", reloaded },
		{ "plain non-atomic increment", plain },
	};
	if (__rseq_size == 0) {
		fprintf(stderr, "glibc did not register rseq (GLIBC_TUNABLES?)\n");
		return 2;
	}
	for (int rep = 0; rep < 3; rep++)
		for (unsigned k = 0; k < sizeof v / sizeof v[0]; k++) {
			double t = now();
			v[k].f(N);
			printf("%-34s %.3f ns/op\n", v[k].name, (now() - t) / N);
		}
	return 0;
}
