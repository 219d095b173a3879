/*
 * SPDX-License-Identifier: MIT
 *
 * Promela model of the HMM-mode userptr protocol (docs/design.md, "Why the
 * GPU never reads a released page").  One userptr range, backed over time by
 * page generations 1..NGEN; 0 means "no page".
 *
 * Processes:
 *   guest_mm      the guest's mm: munmap/migrate/free of the range.  Calls the
 *                 interval notifier's invalidate (bump seq under the driver
 *                 lock, send DETACH_BACKING, wait for the host's answer), then
 *                 releases the old page and installs a new generation.
 *   guest_submit  the guest driver's EXECBUFFER: hmm_range_fault, the
 *                 sequence-checked retry of Documentation/mm/hmm.rst, then
 *                 ATTACH_BACKING (if the host holds stale pages) + SUBMIT
 *                 queued under the driver lock.
 *   host          the VMM/virglrenderer: processes the control queue in
 *                 order.  DETACH unmaps the host window; host amdgpu's own
 *                 notifier then waits for GPU jobs on the BO before the unmap
 *                 returns, and only then is the answer sent.
 *   gpu           runs a job: reads the pages its CS validated, several times.
 *
 * Safety: the GPU never reads a page the guest released.
 * Mutations (spin -D...): NO_SYNC_ACK (invalidate returns before the host
 * answered), NO_HOST_WAIT (host answers before the GPU is idle),
 * NO_SEQ_CHECK (submit skips mmu_interval_read_retry).  Each must fail.
 */

#define NGEN 3
#define QLEN 4

mtype = { ATTACH, DETACH, SUBMIT };

bool released[NGEN + 1];     /* guest freed this page generation */
byte cur = 1;                /* generation currently mapped in the guest */
byte seq = 0;                /* mmu_interval_notifier sequence */
bool inv_active = false;     /* between invalidate_start and _end */
bool drv_lock = false;       /* the driver's notifier lock */

byte host_window = 1;        /* generation aliased in the host window, 0 = none */
bool gpu_busy = false;       /* a job on the userptr BO is running */
byte gpu_page = 0;           /* pages the running job validated */
bool acked = false;          /* host answered the DETACH */
byte host_gen = 1;           /* generation the guest last attached */

chan ctrlq = [QLEN] of { mtype, byte };

inline lock()   { atomic { !drv_lock -> drv_lock = true } }
inline unlock() { drv_lock = false }

proctype guest_mm()
{
	byte gen = 1;
	do
	:: gen < NGEN ->
		/* invalidate_range_start: the interval notifier's callback */
		inv_active = true;
		lock();
		seq++;
		host_gen = 0;              /* the host will drop what it holds */
		unlock();
		acked = false;
		ctrlq ! DETACH, 0;
#ifndef NO_SYNC_ACK
		acked;                     /* blockable: wait for the host */
#endif
		/* callback returned: the mm frees the old page */
		released[gen] = true;
		gen++;
		cur = gen;
		inv_active = false;        /* invalidate_range_end */
	:: else -> break
	od
}

proctype guest_submit()
{
	byte s, pages, n = 0;
	do
	:: n < 3 ->
retry:
		/* mmu_interval_read_begin waits out a running invalidation */
		atomic { !inv_active -> s = seq }
		pages = cur;               /* hmm_range_fault */
		lock();
#ifndef NO_SEQ_CHECK
		if
		:: s != seq -> unlock(); goto retry
		:: else -> skip
		fi;
#endif
		if
		:: host_gen != pages -> ctrlq ! ATTACH, pages; host_gen = pages
		:: else -> skip
		fi;
		ctrlq ! SUBMIT, 0;
		unlock();
		n++
	:: else -> break
	od
}

proctype host()
{
	mtype op;
	byte arg;
end:	do
	:: ctrlq ? op, arg ->
		if
		:: op == ATTACH -> host_window = arg
		:: op == SUBMIT ->
			/* amdgpu_cs: revalidate the userptr from the window */
			if
			:: host_window != 0 && !gpu_busy ->
				gpu_page = host_window; gpu_busy = true
			:: else -> skip        /* -EFAULT, or the ring is busy */
			fi
		:: op == DETACH ->
			host_window = 0;
#ifndef NO_HOST_WAIT
			!gpu_busy;             /* host amdgpu's notifier waits */
#endif
			acked = true
		fi
	od
}

proctype gpu()
{
end:	do
	:: gpu_busy ->
		assert(!released[gpu_page]);
		assert(!released[gpu_page]);
		gpu_busy = false
	od
}

init
{
	atomic {
		run guest_mm();
		run guest_submit();
		run host();
		run gpu()
	}
}
