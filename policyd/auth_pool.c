/*
 * auth_pool.c - the password-hashing threads of one elemta-policyd
 * worker (contract in auth_pool.h).
 *
 * Called by policyd/worker.c only.  The queue is a FIFO under one mutex;
 * finished jobs go to a second list and a byte on a pipe wakes the loop.
 * Why threads and not a process: a job must carry the password, and a
 * thread shares the worker's memory (nothing crosses a socket or lands in
 * another process) while still leaving the loop free.  They run at the
 * loop's priority: a lower one starved legitimate logins on a busy
 * machine, and the loop, mostly asleep, wins the CPU on each wake-up
 * anyway.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth_pool.h"
#include "log.h"

/* One job in a list (the pool's own link, so jobs stay plain structs). */
struct pool_item {
	struct auth_job *job;
	struct pool_item *next;
};

struct auth_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t *threads;
	unsigned nthreads;
	bool stop;
	struct pool_item *wait_head, *wait_tail;   /* not started yet   */
	struct pool_item *done_head, *done_tail;   /* finished          */
	struct auth_job *running[AUTH_POOL_THREADS_MAX];
	unsigned inflight;                         /* waiting + running */
	int pipe_rd, pipe_wr;
};

/* pool_append - add it at the tail of a list. */
static void
pool_append(struct pool_item **head, struct pool_item **tail,
    struct pool_item *it)
{
	it->next = NULL;
	if (*tail != NULL)
		(*tail)->next = it;
	else
		*head = it;
	*tail = it;
}

/* pool_client_load - jobs of client waiting or running (called locked). */
static unsigned
pool_client_load(const struct auth_pool *p, const char *client)
{
	unsigned n = 0;

	for (const struct pool_item *it = p->wait_head; it; it = it->next)
		if (strcmp(it->job->client, client) == 0)
			n++;
	for (unsigned i = 0; i < p->nthreads; i++)
		if (p->running[i] != NULL &&
		    strcmp(p->running[i]->client, client) == 0)
			n++;
	return n;
}

/* pool_finish - hand a job back and wake the loop (called locked). */
static void
pool_finish(struct auth_pool *p, struct pool_item *it)
{
	char b = 1;

	pool_append(&p->done_head, &p->done_tail, it);
	p->inflight--;
	/* A full pipe already says "something is done". */
	(void)!write(p->pipe_wr, &b, 1);
}

/* A thread's start argument. */
struct pool_thread_arg {
	struct auth_pool *p;
	unsigned slot;
};

/* pool_thread - take the oldest job, hash, hand it back; until stopped. */
static void *
pool_thread(void *arg)
{
	struct pool_thread_arg *a = arg;
	struct auth_pool *p = a->p;
	unsigned slot = a->slot;
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));

	free(a);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct pool_item *it;

		while (!p->stop && p->wait_head == NULL)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stop)
			break;
		it = p->wait_head;
		p->wait_head = it->next;
		if (p->wait_head == NULL)
			p->wait_tail = NULL;
		p->running[slot] = it->job;
		pthread_mutex_unlock(&p->mu);
		auth_job_run(it->job, cd);
		pthread_mutex_lock(&p->mu);
		p->running[slot] = NULL;
		pool_finish(p, it);
	}
	pthread_mutex_unlock(&p->mu);
	free(cd);
	return NULL;
}

/* auth_pool_new - the pipe, then the threads. */
struct auth_pool *
auth_pool_new(unsigned threads, struct error *err)
{
	struct auth_pool *p = xcalloc(1, sizeof(*p));
	int fds[2];

	if (threads == 0)
		threads = 1;
	if (threads > AUTH_POOL_THREADS_MAX)
		threads = AUTH_POOL_THREADS_MAX;
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
		error_set(err, "auth pool pipe: %s", strerror(errno));
		free(p);
		return NULL;
	}
	p->pipe_rd = fds[0];
	p->pipe_wr = fds[1];
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->threads = xcalloc(threads, sizeof(*p->threads));
	for (unsigned i = 0; i < threads; i++) {
		struct pool_thread_arg *a = xcalloc(1, sizeof(*a));
		int rc;

		a->p = p;
		a->slot = i;
		rc = pthread_create(&p->threads[i], NULL, pool_thread, a);
		if (rc != 0) {
			free(a);
			error_set(err, "auth pool thread: %s", strerror(rc));
			auth_pool_free(p, NULL);
			return NULL;
		}
		p->nthreads++;
	}
	return p;
}

/* auth_pool_fd - the read end of the wake-up pipe. */
int
auth_pool_fd(const struct auth_pool *p)
{
	return p->pipe_rd;
}

/* auth_pool_submit - queue within the bounds. */
int
auth_pool_submit(struct auth_pool *p, struct auth_job *job)
{
	struct pool_item *it;
	int rc = -1;

	pthread_mutex_lock(&p->mu);
	if (!p->stop && p->inflight < AUTH_POOL_QUEUE_MAX &&
	    pool_client_load(p, job->client) < AUTH_POOL_PER_CLIENT) {
		it = xcalloc(1, sizeof(*it));
		it->job = job;
		pool_append(&p->wait_head, &p->wait_tail, it);
		p->inflight++;
		pthread_cond_signal(&p->cv);
		rc = 0;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

/* auth_pool_next_done - pop a finished job; drains the pipe when none is
 * left. */
struct auth_job *
auth_pool_next_done(struct auth_pool *p)
{
	struct pool_item *it;
	struct auth_job *job = NULL;
	char buf[64];

	pthread_mutex_lock(&p->mu);
	it = p->done_head;
	if (it != NULL) {
		p->done_head = it->next;
		if (p->done_head == NULL)
			p->done_tail = NULL;
	} else {
		while (read(p->pipe_rd, buf, sizeof(buf)) > 0)
			;
	}
	pthread_mutex_unlock(&p->mu);
	if (it != NULL) {
		job = it->job;
		free(it);
	}
	return job;
}

/* auth_pool_free - join, cancel the waiting jobs, free the lists. */
void
auth_pool_free(struct auth_pool *p, void (*drop)(struct auth_job *))
{
	struct pool_item *it, *next;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	for (it = p->wait_head; it != NULL; it = next) {
		next = it->next;
		auth_job_wipe(it->job);
		if (drop != NULL)
			drop(it->job);
		free(it);
	}
	for (it = p->done_head; it != NULL; it = next) {
		next = it->next;
		if (drop != NULL)
			drop(it->job);
		free(it);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	close(p->pipe_rd);
	close(p->pipe_wr);
	free(p->threads);
	free(p);
}
