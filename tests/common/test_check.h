/* SPDX-License-Identifier: MIT */
/*
 * CHECK(cond) and CHECK(cond, fmt, ...) for the project's C tests: a false
 * condition is printed with where it is and, if given, what was found, and
 * counted in test_failures, which the test's main() turns into its exit
 * status.  One copy for every test program (each tests/ subfolder's
 * meson.build adds this folder to the include path).
 */
#ifndef TEST_CHECK_H
#define TEST_CHECK_H

#include <stdio.h>

static int test_failures;

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			printf("FAIL %s:%d (%s): check failed: %s",          \
			       __FILE__, __LINE__, __func__, #cond);         \
			__VA_OPT__(printf(": " __VA_ARGS__);)                \
			printf("\n");                                        \
			fflush(stdout);                                      \
			test_failures++;                                     \
		}                                                            \
	} while (0)

#endif /* TEST_CHECK_H */
