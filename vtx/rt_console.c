/* rt_console.c: port E9 console and a small printf for the bare-metal image. */
#include "rt.h"
#include "cpu_x86_64.h"

void rt_putc(char c)
{
	outb(0xE9, (uint8_t)c);
}

void rt_puts(const char *s)
{
	while (*s)
		rt_putc(*s++);
}

static void put_num(uint64_t v, unsigned base, int width, char pad, bool neg)
{
	char buf[24];
	int n = 0;
	do {
		unsigned d = (unsigned)(v % base);
		buf[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= base;
	} while (v);
	if (neg)
		buf[n++] = '-';
	while (n < width)
		buf[n++] = pad;
	while (n)
		rt_putc(buf[--n]);
}

void rt_printf(const char *fmt, ...)
{
	__builtin_va_list ap;
	__builtin_va_start(ap, fmt);
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			rt_putc(*fmt);
			continue;
		}
		fmt++;
		char pad = ' ';
		int width = 0, lng = 0;
		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 's': {
			const char *s = __builtin_va_arg(ap, const char *);
			rt_puts(s ? s : "(null)");
			break;
		}
		case 'c':
			rt_putc((char)__builtin_va_arg(ap, int));
			break;
		case 'd': {
			int64_t v = lng ? __builtin_va_arg(ap, int64_t) : __builtin_va_arg(ap, int);
			put_num(v < 0 ? (uint64_t)-v : (uint64_t)v, 10, width, pad, v < 0);
			break;
		}
		case 'u':
		case 'x': {
			uint64_t v = lng ? __builtin_va_arg(ap, uint64_t) : __builtin_va_arg(ap, unsigned);
			put_num(v, *fmt == 'x' ? 16 : 10, width, pad, false);
			break;
		}
		case 'p':
			rt_puts("0x");
			put_num((uint64_t)(uintptr_t)__builtin_va_arg(ap, void *), 16, 0, ' ', false);
			break;
		case '%':
			rt_putc('%');
			break;
		default:
			rt_putc('?');
			break;
		}
	}
	__builtin_va_end(ap);
}

void rt_shutdown(void)
{
	static const char s[] = "Shutdown";
	for (;;) {
		for (const char *p = s; *p; p++)
			outb(0x8900, (uint8_t)*p);
		__asm__ volatile("cli; hlt");
	}
}

void rt_panic(const char *what, uint64_t a, uint64_t b)
{
	rt_printf("\nvtx: PANIC %s (0x%lx 0x%lx)\nVTX-FAILED\n", what, a, b);
	rt_shutdown();
}
