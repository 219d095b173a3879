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
 *   reaper        a non-blockable invalidation (the OOM reaper): it may only
 *                 free the pages when the host holds none and no detach is
 *                 unanswered, else the callback returns false and nothing is
 *                 freed.
 *   gpu           runs the host GPU's jobs in order (up to GPUQ queued): each
 *                 reads the pages its CS validated, several times.
 *
 * The invalidation queues its DETACH after it dropped the lock (the guest
 * kernel does since v2): the sequence check keeps a submission from
 * attaching pages in between.  The host may answer a DETACH with an error
 * only when it held no pages (the promise of DRM capset version 1); the
 * guest treats an error answer as done.
 *
 * Safety: the GPU never reads a page the guest released.
 * Mutations (spin -D...), each must fail:
 *   NO_SYNC_ACK      invalidate returns before the host answered
 *   NO_HOST_WAIT     host answers before the GPU is idle
 *   NO_SEQ_CHECK     submit skips mmu_interval_read_retry
 *   NO_NONBLOCK_CHECK the non-blockable path frees while the host holds pages
 *   NO_QUEUE_DRAIN   the host waits for the running job only, not the queued
 *   EARLY_ERROR      the host answers with an error while it holds the pages
 */

#define NGEN 3
#define QLEN 4
#define GPUQ 2

mtype = { ATTACH, DETACH, SUBMIT };

bool released[NGEN + 1];     /* guest freed this page generation */
byte cur = 1;                /* generation currently mapped in the guest */
byte seq = 0;                /* mmu_interval_notifier sequence */
bool inv_active = false;     /* between invalidate_start and _end */
bool drv_lock = false;       /* the driver's notifier lock */

byte host_window = 1;        /* generation aliased in the host window, 0 = none */
byte gpu_jobs = 0;           /* jobs on the userptr BO, queued or running */
byte gpu_page[GPUQ];         /* pages each job validated, in order */
byte gpu_head = 0;
bool acked = true;           /* host answered the last DETACH (none yet) */
byte host_gen = 1;           /* generation the guest last attached, 0 = detached */

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
		if
		:: host_gen != 0 ->        /* take the prepared detach and its fence */
			host_gen = 0;
			acked = false;
			unlock();
			ctrlq ! DETACH, 0  /* queued without the lock */
		:: else -> unlock()        /* detached already: wait for that answer */
		fi;
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
			:: host_window != 0 && gpu_jobs < GPUQ ->
				atomic {
					gpu_page[(gpu_head + gpu_jobs) % GPUQ] = host_window;
					gpu_jobs++
				}
			:: else -> skip        /* -EFAULT, or the GPU queue is full */
			fi
		:: op == DETACH ->
#ifdef EARLY_ERROR
			if
			:: acked = true        /* error answer, pages still mapped */
			:: skip
			fi;
#endif
			host_window = 0;
#ifndef NO_HOST_WAIT
#ifdef NO_QUEUE_DRAIN
			gpu_jobs <= 1;         /* waits for the running job only */
#else
			gpu_jobs == 0;         /* host amdgpu waits for every fence */
#endif
#endif
			acked = true
		fi
	od
}

proctype gpu()
{
end:	do
	:: gpu_jobs > 0 ->
		assert(!released[gpu_page[gpu_head]]);
		assert(!released[gpu_page[gpu_head]]);
		atomic { gpu_head = (gpu_head + 1) % GPUQ; gpu_jobs-- }
	od
}

/*
 * The OOM reaper's non-blockable invalidation of the current pages: a
 * trylock, then it may free them only if the host holds none and no detach
 * is unanswered; otherwise the callback returns false and nothing is freed.
 */
proctype reaper()
{
	atomic {
		!drv_lock && !inv_active && cur != 0 ->
#ifndef NO_NONBLOCK_CHECK
		if
		:: host_gen == 0 && acked ->
#endif
			seq++;
			released[cur] = true;
			cur = 0                /* reaped: nothing mapped there */
#ifndef NO_NONBLOCK_CHECK
		:: else -> skip
		fi
#endif
	}
}

init
{
	atomic {
		run guest_mm();
		run guest_submit();
		run host();
		run gpu();
		run reaper()
	}
}
