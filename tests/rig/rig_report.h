/* SPDX-License-Identifier: MIT */
/*
 * How the VM rig's programs report (docs/rig.md): one line per check,
 * "PASS rig: CHECK (details)" or "FAIL rig: CHECK: why"; vm-init prefixes
 * the phase, run-vm and run-vtest collect the lines.  Included by each
 * program from this directory, whichever script builds it.
 */
#ifndef RIG_REPORT_H
#define RIG_REPORT_H

#include <stdarg.h>
#include <stdio.h>

/* Failures so far; a program whose checks run in forked children points
 * it into shared memory. */
static int rig_own_failures;
static int *rig_failures = &rig_own_failures;

static inline void __attribute__((format(printf, 1, 0)))
rig_vpass(const char *fmt, va_list ap)
{
	printf("PASS rig: ");
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
}

static inline void __attribute__((format(printf, 2, 0)))
rig_vfail(const char *check, const char *fmt, va_list ap)
{
	printf("FAIL rig: %s: ", check);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	(*rig_failures)++;
}

static inline void __attribute__((format(printf, 1, 2)))
rig_pass(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rig_vpass(fmt, ap);
	va_end(ap);
}

static inline void __attribute__((format(printf, 2, 3)))
rig_fail(const char *check, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rig_vfail(check, fmt, ap);
	va_end(ap);
}

#endif /* RIG_REPORT_H */
