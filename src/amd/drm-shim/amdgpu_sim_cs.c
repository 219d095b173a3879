/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 *
 * Contexts, BO lists, command submission, fences and syncobjs.  Every
 * submission gets the next global sequence number and one worker thread
 * (the GPU) executes them in that order, so a fence is "seq <= completed".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "amdgpu_sim.h"

extern _Thread_local uint64_t sim_exec_seq;

/* ---- the GPU ----------------------------------------------------------- */

static void
sim_job_free(struct sim_job *job)
{
	for (unsigned i = 0; i < job->num_bos; i++)
		sim_bo_unref(job->bos[i]);
	if (job->fence_bo)
		sim_bo_unref(job->fence_bo);
	free(job->bos);
	free(job);
	SIM_STAT_SUB(live_jobs, 1);
}

/*
 * A sync file is an eventfd: poll() finds it readable only once its job
 * has completed, as a dma_fence's sync_file.  The simulator keeps a dup of
 * its own and writes to it when the job completes: a waiter such as
 * virglrenderer's fence thread polls another dup of the exported fd, all
 * of them one eventfd.  (Not a pipe: writing to a pipe whose read ends
 * are all closed raises SIGPIPE in the host process.)
 */
struct sim_sync_signal {
	uint64_t seq;
	int wfd;
	struct sim_sync_signal *next;
};

/* With sim.lock held: unlinks the sync files of jobs up to @seq. */
static struct sim_sync_signal *
sim_sync_files_take(uint64_t seq)
{
	struct sim_sync_signal **p = &sim.sync_pending, *ready = NULL;

	while (*p) {
		struct sim_sync_signal *s = *p;

		if (s->seq <= seq) {
			*p = s->next;
			s->next = ready;
			ready = s;
		} else {
			p = &s->next;
		}
	}
	return ready;
}

/* Without sim.lock (our close() wrapper takes it). */
static void
sim_sync_files_signal(struct sim_sync_signal *s)
{
	while (s) {
		struct sim_sync_signal *next = s->next;

		if (eventfd_write(s->wfd, 1))
			fprintf(stderr, "amdgpu-sim: signalling a sync file: %s\n",
				strerror(errno));
		drm_shim_libc_close(s->wfd);
		free(s);
		s = next;
	}
}

static void *
sim_worker(void *arg)
{
	pthread_mutex_lock(&sim.lock);
	for (;;) {
		struct sim_job *job;
		int err = 0;

		while (!sim.head)
			pthread_cond_wait(&sim.queued, &sim.lock);
		job = sim.head;
		sim.head = job->next;
		if (!sim.head)
			sim.tail = NULL;
		pthread_mutex_unlock(&sim.lock);

		sim_exec_seq = job->seq;
		pthread_rwlock_rdlock(&job->file->vm.lock);
		for (unsigned i = 0; i < job->num_ibs && !err; i++)
			err = sim_execute_ib(&job->file->vm, &job->ibs[i]);
		pthread_rwlock_unlock(&job->file->vm.lock);
		if (job->fence_bo)
			memcpy(job->fence_bo->cpu + job->fence_offset,
			       &job->fence_value, sizeof(job->fence_value));

		pthread_mutex_lock(&sim.lock);
		if (err)
			_mesa_hash_table_u64_insert(sim.fence_errors, job->seq,
						    (void *)(intptr_t)err);
		sim.completed_seq = job->seq;
		SIM_STAT_ADD(jobs_completed, 1);
		pthread_cond_broadcast(&sim.completed);
		struct sim_sync_signal *ready = sim_sync_files_take(job->seq);
		pthread_mutex_unlock(&sim.lock);
		sim_sync_files_signal(ready);
		sim_job_free(job);
		pthread_mutex_lock(&sim.lock);
	}
	return NULL;
}

/* With sim.lock held. */
static uint64_t
sim_queue_job(struct sim_job *job)
{
	if (!sim.worker_running) {
		pthread_create(&sim.worker, NULL, sim_worker, NULL);
		pthread_detach(sim.worker);
		sim.worker_running = true;
	}
	job->seq = ++sim.submitted_seq;
	if (sim.tail)
		sim.tail->next = job;
	else
		sim.head = job;
	sim.tail = job;
	pthread_cond_signal(&sim.queued);
	return job->seq;
}

/* ---- contexts ---------------------------------------------------------- */

/* An object of one of the file's id tables (contexts, syncobjs). */
static void *
sim_file_find(struct sim_file *file, struct hash_table *table, uint32_t id)
{
	struct hash_entry *e;

	pthread_mutex_lock(&file->lock);
	e = _mesa_hash_table_search(table, (void *)(uintptr_t)id);
	pthread_mutex_unlock(&file->lock);
	return e ? e->data : NULL;
}

static struct sim_ctx *
sim_ctx_find(struct sim_file *file, uint32_t id)
{
	return sim_file_find(file, file->contexts, id);
}

static void
sim_ctx_free(struct sim_ctx *ctx)
{
	/* as amdgpu_ctx_fini(): the level it found comes back */
	pthread_mutex_lock(&sim.lock);
	if (sim.stable_pstate_ctx == ctx) {
		sim.stable_pstate = ctx->stable_pstate;
		sim.stable_pstate_ctx = NULL;
	}
	pthread_mutex_unlock(&sim.lock);
	SIM_STAT_SUB(live_contexts, 1);
	for (unsigned i = 0; i < AMDGPU_HW_IP_NUM; i++)
		for (unsigned j = 0; j < ARRAY_SIZE(ctx->entities[0]); j++)
			free(ctx->entities[i][j]);
	free(ctx);
}

static bool sim_ip_valid(uint32_t ip_type, uint32_t ip_instance,
			 uint32_t ring);

/* With sim.lock held. */
static struct sim_entity *
sim_entity(struct sim_ctx *ctx, uint32_t ip_type, uint32_t ring, bool create)
{
	struct sim_entity **e = &ctx->entities[ip_type][ring];

	if (!*e && create) {
		*e = calloc(1, sizeof(**e));
		if (*e)
			(*e)->next = 1;
	}
	return *e;
}

/* The GPU sequence number of fence @value of a context ring, 0 when it
 * is known to have signalled; -EINVAL for a ring, context or fence that
 * does not exist (amdgpu_ctx_get_fence()). */
static int
sim_fence_lookup(struct sim_file *file, uint32_t ctx_id, uint32_t ip_type,
		 uint32_t ip_instance, uint32_t ring, uint64_t value,
		 uint64_t *gseq)
{
	struct sim_ctx *ctx = sim_ctx_find(file, ctx_id);
	struct sim_entity *e;
	int r = 0;

	if (!ctx || !sim_ip_valid(ip_type, ip_instance, ring))
		return -EINVAL;
	pthread_mutex_lock(&sim.lock);
	e = sim_entity(ctx, ip_type, ring, false);
	*gseq = 0;
	if (value >= (e ? e->next : 1))
		r = -EINVAL;
	else if (value && value + SIM_ENTITY_SLOTS >= e->next)
		*gseq = e->gseq[value % SIM_ENTITY_SLOTS];
	pthread_mutex_unlock(&sim.lock);
	return r;
}

/*
 * As Linux 6.12's amdgpu_ctx_set_stable_pstate(): one context at a time may
 * force the level; the first time, it keeps the level it found, which the
 * device gets back when that context goes.
 */
static int
sim_set_stable_pstate(struct sim_ctx *ctx, uint32_t pstate)
{
	int r = 0;

	pthread_mutex_lock(&sim.lock);
	if (sim.stable_pstate_ctx && sim.stable_pstate_ctx != ctx) {
		r = -EBUSY;
	} else if (sim.stable_pstate != pstate) {
		if (!sim.stable_pstate_ctx) {
			sim.stable_pstate_ctx = ctx;
			ctx->stable_pstate = sim.stable_pstate;
		}
		sim.stable_pstate = pstate;
	}
	pthread_mutex_unlock(&sim.lock);
	return r;
}

int
sim_ioctl_ctx(int fd, unsigned long request, void *arg)
{
	union drm_amdgpu_ctx *args = arg;
	struct sim_file *file = sim_file_get(fd);
	struct sim_ctx *ctx;
	struct hash_entry *e;
	int32_t prio = args->in.priority;
	uint32_t pstate;

	if (!file)
		return -EBADF;
	/* Only SET_STABLE_PSTATE takes flags (the level). */
	if (args->in.op != AMDGPU_CTX_OP_SET_STABLE_PSTATE && args->in.flags)
		return -EINVAL;
	switch (args->in.op) {
	case AMDGPU_CTX_OP_ALLOC_CTX:
		if (prio < AMDGPU_CTX_PRIORITY_VERY_LOW ||
		    prio > AMDGPU_CTX_PRIORITY_VERY_HIGH)
			prio = AMDGPU_CTX_PRIORITY_NORMAL;
		ctx = calloc(1, sizeof(*ctx));
		if (!ctx)
			return -ENOMEM;
		ctx->priority = prio;
		SIM_STAT_ADD(live_contexts, 1);
		pthread_mutex_lock(&file->lock);
		ctx->id = file->next_ctx++;
		_mesa_hash_table_insert(file->contexts,
					(void *)(uintptr_t)ctx->id, ctx);
		pthread_mutex_unlock(&file->lock);
		memset(args, 0, sizeof(*args));
		args->out.alloc.ctx_id = ctx->id;
		return 0;
	case AMDGPU_CTX_OP_FREE_CTX:
		pthread_mutex_lock(&file->lock);
		e = _mesa_hash_table_search(file->contexts,
					    (void *)(uintptr_t)args->in.ctx_id);
		if (e) {
			sim_ctx_free(e->data);
			_mesa_hash_table_remove(file->contexts, e);
		}
		pthread_mutex_unlock(&file->lock);
		return e ? 0 : -EINVAL;
	case AMDGPU_CTX_OP_QUERY_STATE:
	case AMDGPU_CTX_OP_QUERY_STATE2:
		if (!sim_ctx_find(file, args->in.ctx_id))
			return -EINVAL;
		memset(args, 0, sizeof(*args));
		args->out.state.reset_status = AMDGPU_CTX_NO_RESET;
		return 0;
	case AMDGPU_CTX_OP_GET_STABLE_PSTATE:
		if (!(ctx = sim_ctx_find(file, args->in.ctx_id)))
			return -EINVAL;
		pthread_mutex_lock(&sim.lock);
		pstate = sim.stable_pstate;
		pthread_mutex_unlock(&sim.lock);
		memset(args, 0, sizeof(*args));
		args->out.pstate.flags = pstate;
		return 0;
	case AMDGPU_CTX_OP_SET_STABLE_PSTATE:
		pstate = args->in.flags;
		if (pstate & ~AMDGPU_CTX_STABLE_PSTATE_FLAGS_MASK ||
		    pstate > AMDGPU_CTX_STABLE_PSTATE_PEAK)
			return -EINVAL;
		if (!(ctx = sim_ctx_find(file, args->in.ctx_id)))
			return -EINVAL;
		return sim_set_stable_pstate(ctx, pstate);
	default:
		return -EINVAL;
	}
}

/* ---- BO lists ---------------------------------------------------------- */

static int
sim_read_bo_entries(struct sim_file *file, const void *ptr, uint32_t count,
		    uint32_t entry_size, uint32_t **handles_out)
{
	uint32_t *handles;

	if (count > 128 * 1024 || entry_size < sizeof(uint32_t))
		return -EINVAL;
	handles = calloc(count ? count : 1, sizeof(*handles));
	if (!handles)
		return -ENOMEM;
	for (uint32_t i = 0; i < count; i++) {
		struct drm_amdgpu_bo_list_entry entry = { 0 };
		struct sim_bo *bo;

		memcpy(&entry, (const uint8_t *)ptr + (size_t)i * entry_size,
		       MIN2(entry_size, sizeof(entry)));
		bo = sim_bo_lookup(file, entry.bo_handle);
		if (!bo) {
			free(handles);
			return -ENOENT;
		}
		sim_bo_unref(bo);
		handles[i] = entry.bo_handle;
	}
	*handles_out = handles;
	return 0;
}

int
sim_ioctl_bo_list(int fd, unsigned long request, void *arg)
{
	union drm_amdgpu_bo_list *args = arg;
	struct sim_file *file = sim_file_get(fd);
	const void *ptr = (const void *)(uintptr_t)args->in.bo_info_ptr;
	struct sim_bo_list *list;
	struct hash_entry *e;
	uint32_t *handles = NULL;
	int r;

	if (!file)
		return -EBADF;
	switch (args->in.operation) {
	case AMDGPU_BO_LIST_OP_CREATE:
		r = sim_read_bo_entries(file, ptr, args->in.bo_number,
					args->in.bo_info_size, &handles);
		if (r)
			return r;
		list = calloc(1, sizeof(*list));
		if (!list) {
			free(handles);
			return -ENOMEM;
		}
		list->count = args->in.bo_number;
		list->handles = handles;
		pthread_mutex_lock(&file->lock);
		uint32_t id = file->next_list++;
		_mesa_hash_table_insert(file->bo_lists, (void *)(uintptr_t)id,
					list);
		pthread_mutex_unlock(&file->lock);
		memset(args, 0, sizeof(*args));
		args->out.list_handle = id;
		return 0;
	case AMDGPU_BO_LIST_OP_DESTROY:
		pthread_mutex_lock(&file->lock);
		e = _mesa_hash_table_search(file->bo_lists,
					    (void *)(uintptr_t)args->in.list_handle);
		if (e) {
			list = e->data;
			free(list->handles);
			free(list);
			_mesa_hash_table_remove(file->bo_lists, e);
		}
		pthread_mutex_unlock(&file->lock);
		return e ? 0 : -ENOENT;
	case AMDGPU_BO_LIST_OP_UPDATE:
		r = sim_read_bo_entries(file, ptr, args->in.bo_number,
					args->in.bo_info_size, &handles);
		if (r)
			return r;
		pthread_mutex_lock(&file->lock);
		e = _mesa_hash_table_search(file->bo_lists,
					    (void *)(uintptr_t)args->in.list_handle);
		if (e) {
			list = e->data;
			free(list->handles);
			list->handles = handles;
			list->count = args->in.bo_number;
		}
		pthread_mutex_unlock(&file->lock);
		if (!e) {
			free(handles);
			return -ENOENT;
		}
		return 0;
	default:
		return -EINVAL;
	}
}

/* ---- syncobjs ---------------------------------------------------------- */

static bool
sim_seq_signaled(uint64_t seq)
{
	return seq == 0 || seq <= sim.completed_seq;	/* sim.lock held */
}

static struct sim_syncobj *
sim_syncobj_new(void)
{
	struct sim_syncobj *obj = calloc(1, sizeof(*obj));

	if (obj)
		obj->refcount = 1;
	return obj;
}

void
sim_syncobj_unref(struct sim_syncobj *obj)
{
	bool last;

	pthread_mutex_lock(&sim.lock);
	last = --obj->refcount == 0;
	pthread_mutex_unlock(&sim.lock);
	if (last) {
		free(obj->points);
		free(obj);
	}
}

/* With sim.lock held.  Point 0 on a binary syncobj replaces its fence. */
static int
sim_syncobj_add(struct sim_syncobj *obj, uint64_t point, uint64_t seq)
{
	if (point == 0)
		obj->count = 0;
	/* Forget points that signalled before the last signalled one. */
	while (obj->count >= 2 && sim_seq_signaled(obj->points[0].seq) &&
	       sim_seq_signaled(obj->points[1].seq)) {
		memmove(&obj->points[0], &obj->points[1],
			(obj->count - 1) * sizeof(*obj->points));
		obj->count--;
	}
	if (obj->count == obj->capacity) {
		unsigned cap = obj->capacity ? obj->capacity * 2 : 4;
		void *p = realloc(obj->points, cap * sizeof(*obj->points));

		if (!p)
			return -ENOMEM;
		obj->points = p;
		obj->capacity = cap;
	}
	obj->points[obj->count++] = (struct sim_syncobj_point){ point, seq };
	pthread_cond_broadcast(&sim.completed);	/* WAIT_FOR_SUBMIT waiters */
	return 0;
}

/* With sim.lock held: the fence for @point, or false if not submitted. */
static bool
sim_syncobj_fence(const struct sim_syncobj *obj, uint64_t point,
		  uint64_t *seq)
{
	if (!obj->count)
		return false;
	if (point == 0) {
		*seq = obj->points[obj->count - 1].seq;
		return true;
	}
	for (unsigned i = 0; i < obj->count; i++) {
		if (obj->points[i].point >= point) {
			*seq = obj->points[i].seq;
			return true;
		}
	}
	return false;
}

static struct sim_syncobj *
sim_syncobj_find(struct sim_file *file, uint32_t handle)
{
	return sim_file_find(file, file->syncobjs, handle);
}

static uint32_t
sim_syncobj_install(struct sim_file *file, struct sim_syncobj *obj)
{
	uint32_t handle;

	pthread_mutex_lock(&file->lock);
	handle = file->next_syncobj++;
	_mesa_hash_table_insert(file->syncobjs, (void *)(uintptr_t)handle, obj);
	pthread_mutex_unlock(&file->lock);
	return handle;
}

struct sim_sync_file {
	uint64_t seq;
};

static int
sim_export_sync_file(uint64_t seq)
{
	struct sim_sync_file *sf = malloc(sizeof(*sf));
	struct sim_sync_signal *sig = malloc(sizeof(*sig));
	int efd = -1, r;

	if (sf && sig)
		efd = eventfd(0, EFD_CLOEXEC);
	if (efd >= 0) {
		sig->wfd = fcntl(efd, F_DUPFD_CLOEXEC, 0);
		if (sig->wfd < 0) {
			int err = errno;

			drm_shim_libc_close(efd);
			errno = err;
			efd = -1;
		}
	}
	if (efd < 0) {
		r = sf && sig ? -errno : -ENOMEM;
		free(sf);
		free(sig);
		return r;
	}
	sf->seq = seq;
	sig->seq = seq;
	pthread_mutex_lock(&sim.lock);
	if (sim_seq_signaled(seq)) {
		sig->next = NULL;
	} else {
		sig->next = sim.sync_pending;
		sim.sync_pending = sig;
		sig = NULL;
	}
	pthread_mutex_unlock(&sim.lock);
	sim_sync_files_signal(sig);	/* already signalled */
	r = sim_export_install(SIM_EXPORT_SYNC_FILE, sf, efd);
	if (r < 0)
		free(sf);
	return r;
}

/* Waits for @count syncobj points; 0, -ETIME or -EINVAL. */
static int
sim_syncobj_wait(struct sim_file *file, const uint32_t *handles,
		 const uint64_t *points, uint32_t count, int64_t timeout,
		 uint32_t flags, uint32_t *first_signaled)
{
	bool all = flags & DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL;
	bool for_submit = flags & DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT;
	bool available = flags & DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE;
	struct sim_syncobj **objs;
	int r = 0;

	if (count == 0)
		return -EINVAL;
	objs = calloc(count, sizeof(*objs));
	if (!objs)
		return -ENOMEM;
	for (uint32_t i = 0; i < count; i++) {
		objs[i] = sim_syncobj_find(file, handles[i]);
		if (!objs[i]) {
			free(objs);
			return -ENOENT;
		}
	}

	pthread_mutex_lock(&sim.lock);
	for (;;) {
		uint32_t done = 0, first = UINT32_MAX;

		for (uint32_t i = 0; i < count; i++) {
			uint64_t seq;
			bool have = sim_syncobj_fence(objs[i],
						      points ? points[i] : 0,
						      &seq);

			if (!have && !for_submit) {
				r = -EINVAL;
				goto out;
			}
			if (have && (available || sim_seq_signaled(seq))) {
				done++;
				if (first == UINT32_MAX)
					first = i;
			}
		}
		if (all ? done == count : done > 0) {
			if (first_signaled)
				*first_signaled = first;
			break;
		}
		if (timeout <= 0 || (uint64_t)timeout <= sim_monotonic_ns()) {
			r = -ETIME;
			break;
		}
		struct timespec ts = {
			.tv_sec = timeout / 1000000000ll,
			.tv_nsec = timeout % 1000000000ll,
		};
		pthread_cond_timedwait(&sim.completed, &sim.lock, &ts);
	}
out:
	pthread_mutex_unlock(&sim.lock);
	free(objs);
	return r;
}

int
sim_ioctl_syncobj(int fd, unsigned long request, void *arg, bool *handled)
{
	struct sim_file *file = sim_file_get(fd);
	struct sim_syncobj *obj, *dst;
	uint64_t seq;
	int r = 0;

	*handled = true;
	if (!file)
		return -EBADF;

	switch (_IOC_NR(request)) {
	case _IOC_NR(DRM_IOCTL_SYNCOBJ_CREATE): {
		struct drm_syncobj_create *c = arg;

		if (c->flags & ~DRM_SYNCOBJ_CREATE_SIGNALED)
			return -EINVAL;
		obj = sim_syncobj_new();
		if (!obj)
			return -ENOMEM;
		if (c->flags & DRM_SYNCOBJ_CREATE_SIGNALED) {
			pthread_mutex_lock(&sim.lock);
			r = sim_syncobj_add(obj, 0, 0);
			pthread_mutex_unlock(&sim.lock);
		}
		c->handle = sim_syncobj_install(file, obj);
		return r;
	}
	case _IOC_NR(DRM_IOCTL_SYNCOBJ_DESTROY): {
		struct drm_syncobj_destroy *d = arg;
		struct hash_entry *e;

		if (d->pad)
			return -EINVAL;
		pthread_mutex_lock(&file->lock);
		e = _mesa_hash_table_search(file->syncobjs,
					    (void *)(uintptr_t)d->handle);
		obj = e ? e->data : NULL;
		if (e)
			_mesa_hash_table_remove(file->syncobjs, e);
		pthread_mutex_unlock(&file->lock);
		if (!obj)
			return -EINVAL;
		sim_syncobj_unref(obj);
		return 0;
	}
	case _IOC_NR(DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD): {
		struct drm_syncobj_handle *h = arg;

		obj = sim_syncobj_find(file, h->handle);
		if (!obj)
			return -ENOENT;
		if (h->flags & DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE) {
			pthread_mutex_lock(&sim.lock);
			bool have = sim_syncobj_fence(obj, 0, &seq);
			pthread_mutex_unlock(&sim.lock);
			if (!have)
				return -EINVAL;
			r = sim_export_sync_file(seq);
		} else {
			pthread_mutex_lock(&sim.lock);
			obj->refcount++;
			pthread_mutex_unlock(&sim.lock);
			r = sim_export_fd(SIM_EXPORT_SYNCOBJ, obj);
			if (r < 0)
				sim_syncobj_unref(obj);
		}
		if (r < 0)
			return r;
		h->fd = r;
		return 0;
	}
	case _IOC_NR(DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE): {
		struct drm_syncobj_handle *h = arg;

		if (h->flags & DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE) {
			struct sim_sync_file *sf =
				sim_export_lookup(h->fd, SIM_EXPORT_SYNC_FILE);

			obj = sim_syncobj_find(file, h->handle);
			if (!sf || !obj)
				return -EINVAL;
			pthread_mutex_lock(&sim.lock);
			r = sim_syncobj_add(obj, 0, sf->seq);
			pthread_mutex_unlock(&sim.lock);
			return r;
		}
		obj = sim_export_lookup(h->fd, SIM_EXPORT_SYNCOBJ);
		if (!obj)
			return -EINVAL;
		pthread_mutex_lock(&sim.lock);
		obj->refcount++;
		pthread_mutex_unlock(&sim.lock);
		h->handle = sim_syncobj_install(file, obj);
		return 0;
	}
	case _IOC_NR(DRM_IOCTL_SYNCOBJ_WAIT): {
		struct drm_syncobj_wait *w = arg;

		if (w->flags & DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE)
			return -EINVAL;
		return sim_syncobj_wait(file,
					(const uint32_t *)(uintptr_t)w->handles,
					NULL, w->count_handles, w->timeout_nsec,
					w->flags, &w->first_signaled);
	}
	case _IOC_NR(DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT): {
		struct drm_syncobj_timeline_wait *w = arg;

		return sim_syncobj_wait(file,
					(const uint32_t *)(uintptr_t)w->handles,
					(const uint64_t *)(uintptr_t)w->points,
					w->count_handles, w->timeout_nsec,
					w->flags, &w->first_signaled);
	}
	case _IOC_NR(DRM_IOCTL_SYNCOBJ_RESET):
	case _IOC_NR(DRM_IOCTL_SYNCOBJ_SIGNAL): {
		struct drm_syncobj_array *a = arg;
		const uint32_t *handles = (const uint32_t *)(uintptr_t)a->handles;

		if (a->pad || !a->count_handles)
			return -EINVAL;
		for (uint32_t i = 0; i < a->count_handles; i++) {
			obj = sim_syncobj_find(file, handles[i]);
			if (!obj)
				return -ENOENT;
			pthread_mutex_lock(&sim.lock);
			if (_IOC_NR(request) == _IOC_NR(DRM_IOCTL_SYNCOBJ_RESET))
				obj->count = 0;
			else
				r = sim_syncobj_add(obj, 0, 0);
			pthread_mutex_unlock(&sim.lock);
		}
		return r;
	}
	case _IOC_NR(DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL):
	case _IOC_NR(DRM_IOCTL_SYNCOBJ_QUERY): {
		struct drm_syncobj_timeline_array *a = arg;
		const uint32_t *handles = (const uint32_t *)(uintptr_t)a->handles;
		uint64_t *points = (uint64_t *)(uintptr_t)a->points;
		bool query = _IOC_NR(request) == _IOC_NR(DRM_IOCTL_SYNCOBJ_QUERY);

		if (!a->count_handles)
			return -EINVAL;
		for (uint32_t i = 0; i < a->count_handles; i++) {
			obj = sim_syncobj_find(file, handles[i]);
			if (!obj)
				return -ENOENT;
			pthread_mutex_lock(&sim.lock);
			if (!query) {
				r = sim_syncobj_add(obj, points[i], 0);
			} else {
				uint64_t last = 0;

				for (unsigned k = 0; k < obj->count; k++) {
					if (!(a->flags & DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED) &&
					    !sim_seq_signaled(obj->points[k].seq))
						break;
					last = obj->points[k].point;
				}
				points[i] = last;
			}
			pthread_mutex_unlock(&sim.lock);
		}
		return r;
	}
	case _IOC_NR(DRM_IOCTL_SYNCOBJ_TRANSFER): {
		struct drm_syncobj_transfer *t = arg;

		if (t->pad)
			return -EINVAL;
		obj = sim_syncobj_find(file, t->src_handle);
		dst = sim_syncobj_find(file, t->dst_handle);
		if (!obj || !dst)
			return -ENOENT;
		pthread_mutex_lock(&sim.lock);
		if (sim_syncobj_fence(obj, t->src_point, &seq))
			r = sim_syncobj_add(dst, t->dst_point, seq);
		else
			r = -EINVAL;
		pthread_mutex_unlock(&sim.lock);
		return r;
	}
	default:
		*handled = false;
		return -EINVAL;
	}
}

int
sim_ioctl_fence_to_handle(int fd, unsigned long request, void *arg)
{
	union drm_amdgpu_fence_to_handle *args = arg;
	struct sim_file *file = sim_file_get(fd);
	const struct drm_amdgpu_fence *f = &args->in.fence;
	struct sim_syncobj *obj;
	uint32_t handle;
	uint64_t seq;
	int r;

	if (!file)
		return -EBADF;
	r = sim_fence_lookup(file, f->ctx_id, f->ip_type, f->ip_instance,
			     f->ring, f->seq_no, &seq);
	if (r)
		return r;

	switch (args->in.what) {
	case AMDGPU_FENCE_TO_HANDLE_GET_SYNCOBJ:
	case AMDGPU_FENCE_TO_HANDLE_GET_SYNCOBJ_FD:
		obj = sim_syncobj_new();
		if (!obj)
			return -ENOMEM;
		pthread_mutex_lock(&sim.lock);
		r = sim_syncobj_add(obj, 0, seq);
		pthread_mutex_unlock(&sim.lock);
		if (r) {
			sim_syncobj_unref(obj);
			return r;
		}
		if (args->in.what == AMDGPU_FENCE_TO_HANDLE_GET_SYNCOBJ) {
			handle = sim_syncobj_install(file, obj);
			memset(args, 0, sizeof(*args));
			args->out.handle = handle;
			return 0;
		}
		r = sim_export_fd(SIM_EXPORT_SYNCOBJ, obj);
		if (r < 0) {
			sim_syncobj_unref(obj);
			return r;
		}
		memset(args, 0, sizeof(*args));
		args->out.handle = r;
		return 0;
	case AMDGPU_FENCE_TO_HANDLE_GET_SYNC_FILE_FD:
		r = sim_export_sync_file(seq);
		if (r < 0)
			return r;
		memset(args, 0, sizeof(*args));
		args->out.handle = r;
		return 0;
	default:
		return -EINVAL;
	}
}

/* ---- submission -------------------------------------------------------- */

static bool
sim_ip_valid(uint32_t ip_type, uint32_t ip_instance, uint32_t ring)
{
	if (ip_instance != 0)
		return false;
	switch (ip_type) {
	case AMDGPU_HW_IP_GFX:
	case AMDGPU_HW_IP_COMPUTE:
	case AMDGPU_HW_IP_DMA:
		/* what AMDGPU_INFO_HW_IP_INFO reports */
		return ring < SIM_MAX_RINGS &&
		       (sim_ip_available_rings(ip_type) >> ring & 1);
	default:
		return false;
	}
}

struct sim_cs_sync {
	uint32_t handle;
	uint64_t point;
	bool for_submit;
};

struct sim_cs_parse {
	struct sim_job *job;
	uint32_t *list;			/* BO_HANDLES chunk */
	unsigned list_count;
	struct sim_cs_sync waits[64], signals[64];
	unsigned num_waits, num_signals;
};

static int
sim_cs_add_sync(struct sim_cs_parse *p, bool wait, struct sim_cs_sync sync)
{
	unsigned *n = wait ? &p->num_waits : &p->num_signals;

	if (*n == ARRAY_SIZE(p->waits))
		return -EINVAL;
	(wait ? p->waits : p->signals)[(*n)++] = sync;
	return 0;
}

static int
sim_cs_parse_chunk(struct sim_file *file, struct sim_cs_parse *p,
		   const struct drm_amdgpu_cs_chunk *chunk)
{
	const void *data = (const void *)(uintptr_t)chunk->chunk_data;
	size_t bytes = (size_t)chunk->length_dw * 4;
	struct sim_job *job = p->job;

	switch (chunk->chunk_id) {
	case AMDGPU_CHUNK_ID_IB: {
		struct drm_amdgpu_cs_chunk_ib ib = { 0 };

		if (bytes < sizeof(ib))
			return -EINVAL;
		memcpy(&ib, data, sizeof(ib));
		if (!sim_ip_valid(ib.ip_type, ib.ip_instance, ib.ring))
			return -EINVAL;
		if (job->num_ibs == ARRAY_SIZE(job->ibs))
			return -EINVAL;
		if (ib.ib_bytes == 0 || ib.ib_bytes % 4)
			return -EINVAL;
		/* One ring per submission (no gang submit here). */
		if (job->num_ibs && (ib.ip_type != job->ibs[0].ip_type ||
				     ib.ring != job->ibs[0].ring))
			return -EINVAL;
		job->ibs[job->num_ibs++] = (struct sim_ib){
			.va = ib.va_start, .bytes = ib.ib_bytes,
			.ip_type = ib.ip_type, .ring = ib.ring,
		};
		return 0;
	}
	case AMDGPU_CHUNK_ID_FENCE: {
		struct drm_amdgpu_cs_chunk_fence f = { 0 };
		struct sim_bo *bo;

		if (bytes < sizeof(f) || job->fence_bo)
			return -EINVAL;
		memcpy(&f, data, sizeof(f));
		bo = sim_bo_lookup(file, f.handle);
		if (!bo)
			return -ENOENT;
		/* amdgpu_cs_p1_user_fence(): a whole page of a GEM BO. */
		if (bo->is_userptr || bo->size != SIM_PAGE_SIZE ||
		    f.offset % 8 || f.offset + 8 > bo->size) {
			sim_bo_unref(bo);
			return -EINVAL;
		}
		job->fence_bo = bo;
		job->fence_offset = f.offset;
		return 0;
	}
	case AMDGPU_CHUNK_ID_BO_HANDLES: {
		const struct drm_amdgpu_bo_list_in *in = data;
		int r;

		if (bytes < sizeof(*in) || p->list)
			return -EINVAL;
		r = sim_read_bo_entries(file, (const void *)(uintptr_t)in->bo_info_ptr,
					in->bo_number, in->bo_info_size, &p->list);
		if (r)
			return r;
		p->list_count = in->bo_number;
		return 0;
	}
	case AMDGPU_CHUNK_ID_DEPENDENCIES:
	case AMDGPU_CHUNK_ID_SCHEDULED_DEPENDENCIES: {
		const struct drm_amdgpu_cs_chunk_dep *deps = data;

		/* One in-order queue: earlier fences are already ahead. */
		for (size_t i = 0; i < bytes / sizeof(*deps); i++) {
			uint64_t gseq;
			int r = sim_fence_lookup(file, deps[i].ctx_id,
						 deps[i].ip_type,
						 deps[i].ip_instance,
						 deps[i].ring, deps[i].handle,
						 &gseq);

			if (r)
				return r;
		}
		return 0;
	}
	case AMDGPU_CHUNK_ID_SYNCOBJ_IN:
	case AMDGPU_CHUNK_ID_SYNCOBJ_OUT: {
		const struct drm_amdgpu_cs_chunk_sem *sems = data;
		bool in = chunk->chunk_id == AMDGPU_CHUNK_ID_SYNCOBJ_IN;

		for (size_t i = 0; i < bytes / sizeof(*sems); i++)
			if (sim_cs_add_sync(p, in, (struct sim_cs_sync){
						.handle = sems[i].handle }))
				return -EINVAL;
		return 0;
	}
	case AMDGPU_CHUNK_ID_SYNCOBJ_TIMELINE_WAIT:
	case AMDGPU_CHUNK_ID_SYNCOBJ_TIMELINE_SIGNAL: {
		const struct drm_amdgpu_cs_chunk_syncobj *s = data;
		bool in = chunk->chunk_id == AMDGPU_CHUNK_ID_SYNCOBJ_TIMELINE_WAIT;

		for (size_t i = 0; i < bytes / sizeof(*s); i++) {
			struct sim_cs_sync sync = {
				.handle = s[i].handle,
				.point = s[i].point,
				.for_submit = in && (s[i].flags &
					DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT),
			};

			if (sim_cs_add_sync(p, in, sync))
				return -EINVAL;
		}
		return 0;
	}
	case AMDGPU_CHUNK_ID_CP_GFX_SHADOW:
		return 0;
	default:
		return -EINVAL;
	}
}

/* The waits must name fences that exist (drm_syncobj_find_fence()). */
static int
sim_cs_check_waits(struct sim_file *file, struct sim_cs_parse *p)
{
	for (unsigned i = 0; i < p->num_waits; i++) {
		struct sim_syncobj *obj = sim_syncobj_find(file, p->waits[i].handle);
		uint64_t seq;
		int r = 0;

		if (!obj)
			return -EINVAL;
		if (p->waits[i].for_submit) {
			uint32_t h = p->waits[i].handle;
			uint64_t pt = p->waits[i].point;

			r = sim_syncobj_wait(file, &h, &pt, 1,
					     sim_monotonic_ns() + 10000000000ull,
					     DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT |
					     DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE,
					     NULL);
			if (r)
				return r == -ETIME ? -EINVAL : r;
		}
		pthread_mutex_lock(&sim.lock);
		if (!sim_syncobj_fence(obj, p->waits[i].point, &seq))
			r = -EINVAL;
		pthread_mutex_unlock(&sim.lock);
		if (r)
			return r;
	}
	for (unsigned i = 0; i < p->num_signals; i++)
		if (!sim_syncobj_find(file, p->signals[i].handle))
			return -EINVAL;
	return 0;
}

int
sim_ioctl_cs(int fd, unsigned long request, void *arg)
{
	union drm_amdgpu_cs *cs = arg;
	struct sim_file *file = sim_file_get(fd);
	const uint64_t *chunk_ptrs = (const uint64_t *)(uintptr_t)cs->in.chunks;
	struct sim_cs_parse p = { 0 };
	const uint32_t *handles = NULL;
	unsigned num_handles = 0;
	struct sim_job *job;
	struct sim_ctx *ctx;
	struct sim_entity *ent;
	uint32_t *list_copy = NULL;
	int r = 0;

	if (!file)
		return -EBADF;
	ctx = sim_ctx_find(file, cs->in.ctx_id);
	if (!ctx)
		return -EINVAL;
	if (cs->in.num_chunks == 0 || cs->in.num_chunks > 64)
		return -EINVAL;
	job = calloc(1, sizeof(*job));
	if (!job)
		return -ENOMEM;
	SIM_STAT_ADD(live_jobs, 1);
	job->file = file;
	p.job = job;

	for (uint32_t i = 0; i < cs->in.num_chunks && !r; i++) {
		struct drm_amdgpu_cs_chunk chunk;

		memcpy(&chunk, (const void *)(uintptr_t)chunk_ptrs[i],
		       sizeof(chunk));
		r = sim_cs_parse_chunk(file, &p, &chunk);
	}
	if (!r && !job->num_ibs)
		r = -EINVAL;
	if (!r && cs->in.bo_list_handle) {
		struct hash_entry *e;

		if (p.list) {
			r = -EINVAL;	/* both a list and a chunk */
		} else {
			pthread_mutex_lock(&file->lock);
			e = _mesa_hash_table_search(file->bo_lists,
						    (void *)(uintptr_t)cs->in.bo_list_handle);
			if (e) {
				struct sim_bo_list *l = e->data;

				list_copy = malloc((l->count + 1) * sizeof(*list_copy));
				if (list_copy) {
					memcpy(list_copy, l->handles,
					       l->count * sizeof(*list_copy));
					num_handles = l->count;
				}
			}
			pthread_mutex_unlock(&file->lock);
			if (!e)
				r = -ENOENT;
			else if (!list_copy)
				r = -ENOMEM;
			handles = list_copy;
		}
	} else if (p.list) {
		handles = p.list;
		num_handles = p.list_count;
	}
	if (!r)
		r = sim_cs_check_waits(file, &p);
	if (!r && num_handles) {
		job->bos = calloc(num_handles, sizeof(*job->bos));
		if (!job->bos)
			r = -ENOMEM;
		for (unsigned i = 0; !r && i < num_handles; i++) {
			job->bos[i] = sim_bo_lookup(file, handles[i]);
			if (!job->bos[i])
				r = -ENOENT;
			else
				job->num_bos++;
		}
	}
	if (r) {
		sim_job_free(job);
		free(p.list);
		free(list_copy);
		return r;
	}

	/* A ring keeps SIM_ENTITY_SLOTS fences in flight at most: wait for
	 * the oldest, as amdgpu_ctx_add_fence() does. */
	pthread_mutex_lock(&sim.lock);
	ent = sim_entity(ctx, job->ibs[0].ip_type, job->ibs[0].ring, true);
	uint64_t oldest = ent ? ent->gseq[ent->next % SIM_ENTITY_SLOTS] : 0;
	pthread_mutex_unlock(&sim.lock);
	if (!ent) {
		sim_job_free(job);
		free(p.list);
		free(list_copy);
		return -ENOMEM;
	}
	sim_wait_seq(oldest, UINT64_MAX);

	/* amdgpu_cs_parser_bos() + amdgpu_cs_submit(): revalidate the
	 * userptrs and queue under the notifier lock, so no invalidation
	 * can fall between the two. */
	pthread_mutex_lock(&sim.notifier_lock);
	sim_wait_invalidations_locked();
	for (unsigned i = 0; i < job->num_bos && !r; i++) {
		struct sim_bo *bo = job->bos[i];

		if (!bo->is_userptr)
			continue;
		bool was_valid = atomic_load(&bo->state) == SIM_USERPTR_VALID;
		r = sim_userptr_validate_locked(bo);
		if (!r && !was_valid)
			SIM_STAT_ADD(userptr_revalidations, 1);
	}
	if (!r) {
		pthread_mutex_lock(&sim.lock);
		uint64_t value = ent->next++;

		job->fence_value = value;
		uint64_t seq = sim_queue_job(job);

		ent->gseq[value % SIM_ENTITY_SLOTS] = seq;

		for (unsigned i = 0; i < job->num_bos; i++)
			atomic_store(&job->bos[i]->last_seq, seq);
		for (unsigned i = 0; i < p.num_signals; i++) {
			struct sim_syncobj *obj =
				sim_syncobj_find(file, p.signals[i].handle);

			if (obj)
				sim_syncobj_add(obj, p.signals[i].point, seq);
		}
		file->last_seq = seq;
		pthread_mutex_unlock(&sim.lock);
		SIM_STAT_ADD(submissions, 1);
		memset(cs, 0, sizeof(*cs));
		cs->out.handle = value;
	}
	pthread_mutex_unlock(&sim.notifier_lock);
	if (r)
		sim_job_free(job);
	free(p.list);
	free(list_copy);
	return r;
}

static int
sim_fence_status(uint64_t seq, uint64_t timeout, bool *signaled)
{
	if (timeout != UINT64_MAX && timeout < sim_monotonic_ns())
		timeout = 0;
	*signaled = sim_wait_seq(seq, timeout);
	return *signaled ? sim_fence_error(seq) : 0;
}

int
sim_ioctl_wait_cs(int fd, unsigned long request, void *arg)
{
	union drm_amdgpu_wait_cs *w = arg;
	struct sim_file *file = sim_file_get(fd);
	uint64_t seq;
	bool signaled;
	int r;

	if (!file)
		return -EBADF;
	r = sim_fence_lookup(file, w->in.ctx_id, w->in.ip_type,
			     w->in.ip_instance, w->in.ring, w->in.handle, &seq);
	if (r)
		return r;
	r = sim_fence_status(seq, w->in.timeout, &signaled);
	if (r)
		return r;
	memset(w, 0, sizeof(*w));
	w->out.status = !signaled;
	return 0;
}

int
sim_ioctl_wait_fences(int fd, unsigned long request, void *arg)
{
	union drm_amdgpu_wait_fences *w = arg;
	struct sim_file *file = sim_file_get(fd);
	const struct drm_amdgpu_fence *fences =
		(const void *)(uintptr_t)w->in.fences;
	uint32_t count = w->in.fence_count, pick = 0;
	bool all = w->in.wait_all;
	uint64_t seq = 0;
	bool signaled;
	int r;

	if (!file)
		return -EBADF;
	if (count == 0)
		return -EINVAL;
	for (uint32_t i = 0; i < count; i++) {
		uint64_t g;

		r = sim_fence_lookup(file, fences[i].ctx_id, fences[i].ip_type,
				     fences[i].ip_instance, fences[i].ring,
				     fences[i].seq_no, &g);
		if (r)
			return r;
		/* In-order completion: all = the newest, any = the oldest. */
		if (i == 0 || (all ? g > seq : g < seq)) {
			seq = g;
			pick = i;
		}
	}
	r = sim_fence_status(seq, w->in.timeout_ns, &signaled);
	if (r)
		return r;
	memset(w, 0, sizeof(*w));
	w->out.status = signaled;
	w->out.first_signaled = all ? 0 : pick;
	return 0;
}

void
sim_file_destroy_tables(struct sim_file *file)
{
	hash_table_foreach(file->contexts, e)
		sim_ctx_free(e->data);
	hash_table_foreach(file->bo_lists, e) {
		struct sim_bo_list *l = e->data;

		free(l->handles);
		free(l);
	}
	hash_table_foreach(file->syncobjs, e)
		sim_syncobj_unref(e->data);
	_mesa_hash_table_destroy(file->contexts, NULL);
	_mesa_hash_table_destroy(file->bo_lists, NULL);
	_mesa_hash_table_destroy(file->syncobjs, NULL);
}
