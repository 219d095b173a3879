/*
 * SPDX-License-Identifier: MIT
 *
 * Promela model of one invalidation over two HMM userptrs of one file
 * (docs/design.md section 6, point 2): A (0, the lower range) and B (1).
 * The invalidation calls A's notifier first, which also hands out B's
 * prepared detach (the batch); then B's notifier, which finds B detached
 * and waits for that detach's answer.  Two submitters, each naming one of
 * the userptrs, revalidate and submit under the same notifier lock.
 *
 * Safety:
 *  - the GPU never reads a page the guest released;
 *  - the host never gets a DETACH for a resource it holds no pages of
 *    (the guest's view of what the host holds stays true).
 * Mutations (spin -D...), each must fail:
 *   NO_BATCH_SEQ      the batched userptr keeps its old sequence, so a
 *                     submission attaches its old pages before the batched
 *                     detach is queued
 *   NO_DETACHED_WAIT  B's notifier returns without waiting for the answer
 *                     to the detach that A's notifier handed out
 */

#define NGEN 2
#define QLEN 6
#define GPUQ 2
#define NSUB 2

mtype = { ATTACH, DETACH, SUBMIT };

/* released[r * (NGEN + 1) + gen]: the guest freed userptr r's generation */
bool released[2 * (NGEN + 1)];
byte cur[2] = 1;             /* generation mapped in the guest, per userptr */
byte seq[2];                 /* each interval notifier's sequence */
bool inv_set[2];             /* set by the running invalidation: read_begin waits */
bool drv_lock = false;       /* the file's notifier lock */

byte host_gen[2] = 1;        /* guest's view: generation attached, 0 = none */
bool acked[2] = true;        /* host answered the last DETACH of r */
byte host_window[2] = 1;     /* what the host holds */

byte gpu_jobs = 0;
byte gpu_on[2];              /* jobs per userptr BO, queued or running */
byte gpu_head = 0;
byte gpu_res[GPUQ];
byte gpu_page[GPUQ];

chan ctrlq = [QLEN] of { mtype, byte, byte };

inline lock()   { atomic { !drv_lock -> drv_lock = true } }
inline unlock() { drv_lock = false }

proctype guest_mm()
{
	byte gen = 1;
	bool da, db;
	do
	:: gen < NGEN ->
		/* A's notifier: its own detach, and B's with it */
		lock();
		atomic { seq[0]++; inv_set[0] = true }	/* set_seq */
		da = host_gen[0] != 0;
		if
		:: da -> host_gen[0] = 0; acked[0] = false
		:: else -> skip
		fi;
		db = host_gen[1] != 0;
		if
		:: db ->
#ifndef NO_BATCH_SEQ
			atomic { seq[1]++; inv_set[1] = true }
#endif
			host_gen[1] = 0;
			acked[1] = false
		:: else -> skip
		fi;
		unlock();
		/* queued without the lock */
		if
		:: da -> ctrlq ! DETACH, 0, 0
		:: else -> skip
		fi;
		if
		:: db -> ctrlq ! DETACH, 1, 0
		:: else -> skip
		fi;
		acked[0];
		/* B's notifier: set_seq (the same value if the batch set it) */
		lock();
		if
		:: !inv_set[1] -> atomic { seq[1]++; inv_set[1] = true }
		:: else -> skip
		fi;
		db = host_gen[1] != 0;
		if
		:: db -> host_gen[1] = 0; acked[1] = false
		:: else -> skip
		fi;
		unlock();
		if
		:: db -> ctrlq ! DETACH, 1, 0
		:: else -> skip
		fi;
#ifndef NO_DETACHED_WAIT
		acked[1];
#endif
		/* both callbacks returned: the mm frees the old pages */
		atomic {
			released[gen] = true;
			released[NGEN + 1 + gen] = true;
			gen++;
			cur[0] = gen;
			cur[1] = gen;
			inv_set[0] = false;
			inv_set[1] = false
		}
	:: else -> break
	od
}

/* EXECBUFFER naming userptr r: the sequence-checked revalidation */
proctype guest_submit(byte r)
{
	byte s, pages, n = 0;
	do
	:: n < NSUB ->
retry:
		/* mmu_interval_read_begin */
		atomic { !inv_set[r] -> s = seq[r] }
		pages = cur[r];            /* hmm_range_fault: old PTEs until the zap */
		lock();
		if
		:: s != seq[r] -> unlock(); goto retry
		:: else -> skip
		fi;
		if
		:: host_gen[r] != pages -> ctrlq ! ATTACH, r, pages; host_gen[r] = pages
		:: else -> skip
		fi;
		ctrlq ! SUBMIT, r, 0;
		unlock();
		n++
	:: else -> break
	od
}

proctype host()
{
	mtype op;
	byte r, arg;
end:	do
	:: ctrlq ? op, r, arg ->
		if
		:: op == ATTACH -> host_window[r] = arg
		:: op == SUBMIT ->
			if
			:: host_window[r] != 0 && gpu_jobs < GPUQ ->
				atomic {
					gpu_res[(gpu_head + gpu_jobs) % GPUQ] = r;
					gpu_page[(gpu_head + gpu_jobs) % GPUQ] = host_window[r];
					gpu_jobs++;
					gpu_on[r]++
				}
			:: else -> skip        /* -EFAULT, or the GPU queue is full */
			fi
		:: op == DETACH ->
			assert(host_window[r] != 0);
			host_window[r] = 0;
			gpu_on[r] == 0;            /* host amdgpu waits for the BO's fences */
			acked[r] = true
		fi
	od
}

proctype gpu()
{
end:	do
	:: gpu_jobs > 0 ->
		assert(!released[gpu_res[gpu_head] * (NGEN + 1) + gpu_page[gpu_head]]);
		atomic {
			gpu_on[gpu_res[gpu_head]]--;
			gpu_head = (gpu_head + 1) % GPUQ;
			gpu_jobs--
		}
	od
}

init
{
	atomic {
		run guest_mm();
		run guest_submit(0);
		run guest_submit(1);
		run host();
		run gpu()
	}
}
