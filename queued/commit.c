/*
 * commit.c - finished messages' files removed in batches on a worker
 * thread (contract in commit.h).
 *
 * Called by queued/queue.c on the event loop's thread.  The two threads
 * share only the request lists, under one mutex: the loop appends to
 * `todo` and signals the condition; the worker takes the whole of `todo`
 * as its batch, works without the lock, appends the batch to `done` and
 * writes the eventfd, whose read event on the loop runs the callbacks.
 * While the worker flushes the directory, new removals gather in `todo`:
 * the busier the queue, the more removals share one flush (group commit).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "commit.h"
#include "config.h"
#include "fdio.h"
#include "log.h"
#include "queue_state.h"

#define COMMIT_PATH_MAX (CONFIG_PATH_MAX + 64)

/* One message's removal. */
struct creq {
	char id[QUEUE_ID_MAX + 1];
	unsigned flags;               /* enum commit_flags                */
	commit_done_fn done;
	void *arg;
	int rc;                       /* 0 or an errno                    */
	const char *what;             /* the step rc is about             */
	struct creq *next;
};

struct commit {
	struct event_base *base;
	char spool[CONFIG_PATH_MAX];
	bool do_fsync;
	int efd;                      /* worker -> loop: a batch is done  */
	struct event *done_ev;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct creq *todo, **todo_tail; /* under lock                     */
	struct creq *done;            /* under lock                       */
	bool stop;                    /* under lock                       */
	unsigned pending;             /* the loop's own count             */
};

/* commit_path - spool/sub/id[suffix] into buf. */
static void
commit_path(const struct commit *c, const char *sub, const char *id,
    const char *suffix, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s/%s%s", c->spool, sub, id, suffix);
}

/* commit_batch - the worker's job for one batch (no lock held). */
static void
commit_batch(struct commit *c, struct creq *batch)
{
	char path[COMMIT_PATH_MAX];
	bool any = false;

	for (struct creq *r = batch; r != NULL; r = r->next) {
		commit_path(c, "queue", r->id, "", path, sizeof(path));
		r->rc = unlink(path) < 0 && errno != ENOENT ? errno : 0;
		r->what = "unlink";
		any = any || r->rc == 0;
	}
	if (any && c->do_fsync) {
		commit_path(c, "queue", "", "", path, sizeof(path));
		if (fdio_fsync_dir(path) < 0) {
			int e = errno;

			/* The removals may not survive a crash: the state
			 * files stay, so a repeat is at most a redelivery of
			 * what was just delivered (never a lost message). */
			for (struct creq *r = batch; r != NULL; r = r->next)
				if (r->rc == 0) {
					r->rc = e;
					r->what = "fsync";
				}
			return;
		}
	}
	for (struct creq *r = batch; r != NULL; r = r->next) {
		if (r->rc != 0)
			continue;
		/* Absent files are never looked for: the flags say which
		 * exist.  A failure here leaves an orphan swept at start. */
		if (r->flags & COMMIT_STATE) {
			commit_path(c, "state", r->id, "", path, sizeof(path));
			unlink(path);
		}
		if (r->flags & COMMIT_DELETE_MARK) {
			commit_path(c, "control", r->id, ".delete", path,
			    sizeof(path));
			unlink(path);
		}
	}
}

/* commit_main - the worker: take every queued removal, do it, hand the
 * batch back, until stopped. */
static void *
commit_main(void *arg)
{
	struct commit *c = arg;
	uint64_t one = 1;

	for (;;) {
		struct creq *batch, *last;

		pthread_mutex_lock(&c->lock);
		while (c->todo == NULL && !c->stop)
			pthread_cond_wait(&c->cv, &c->lock);
		if (c->stop) {
			pthread_mutex_unlock(&c->lock);
			return NULL;
		}
		batch = c->todo;
		c->todo = NULL;
		c->todo_tail = &c->todo;
		pthread_mutex_unlock(&c->lock);

		commit_batch(c, batch);

		for (last = batch; last->next != NULL; last = last->next)
			;
		pthread_mutex_lock(&c->lock);
		last->next = c->done;
		c->done = batch;
		pthread_mutex_unlock(&c->lock);
		/* Fails only when the counter is full (EAGAIN), and a full
		 * counter is readable already: nothing to log (and log.c is
		 * the loop thread's). */
		if (write(c->efd, &one, sizeof(one)) < 0)
			continue;
	}
}

/* commit_done_cb - on the loop: answer every finished removal. */
static void
commit_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct commit *c = arg;
	struct creq *list;
	uint64_t n;

	if (read(c->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_err("commit: eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&c->lock);
	list = c->done;
	c->done = NULL;
	pthread_mutex_unlock(&c->lock);
	while (list != NULL) {
		struct creq *r = list;

		list = r->next;
		c->pending--;
		r->done(r->arg, r->id, r->rc, r->what);
		free(r);
	}
}

/* commit_new - see commit.h. */
struct commit *
commit_new(struct event_base *base, const char *spool, bool do_fsync,
    struct error *err)
{
	struct commit *c = xcalloc(1, sizeof(*c));
	int e;

	c->base = base;
	str_copy(c->spool, spool, sizeof(c->spool));
	c->do_fsync = do_fsync;
	c->todo_tail = &c->todo;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->efd < 0) {
		error_set(err, "eventfd: %s", strerror(errno));
		commit_free(c);
		return NULL;
	}
	c->done_ev = event_new(base, c->efd, EV_READ | EV_PERSIST,
	    commit_done_cb, c);
	if (c->done_ev == NULL || event_add(c->done_ev, NULL) < 0) {
		error_set(err, "commit: cannot add the eventfd event");
		commit_free(c);
		return NULL;
	}
	if ((e = pthread_create(&c->thread, NULL, commit_main, c)) != 0) {
		error_set(err, "pthread_create: %s", strerror(e));
		commit_free(c);
		return NULL;
	}
	c->started = true;
	return c;
}

/* commit_remove - see commit.h. */
void
commit_remove(struct commit *c, const char *id, unsigned flags,
    commit_done_fn done, void *arg)
{
	struct creq *r = xcalloc(1, sizeof(*r));

	str_copy(r->id, id, sizeof(r->id));
	r->flags = flags;
	r->done = done;
	r->arg = arg;
	c->pending++;
	pthread_mutex_lock(&c->lock);
	*c->todo_tail = r;
	c->todo_tail = &r->next;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->lock);
}

/* commit_pending - see commit.h. */
unsigned
commit_pending(const struct commit *c)
{
	return c->pending;
}

/* commit_free_list - a request list's memory. */
static void
commit_free_list(struct creq *r)
{
	while (r != NULL) {
		struct creq *nx = r->next;

		free(r);
		r = nx;
	}
}

/* commit_free - see commit.h. */
void
commit_free(struct commit *c)
{
	if (c == NULL)
		return;
	if (c->started) {
		pthread_mutex_lock(&c->lock);
		c->stop = true;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->thread, NULL);
	}
	commit_free_list(c->todo);
	commit_free_list(c->done);
	if (c->done_ev != NULL)
		event_free(c->done_ev);
	if (c->efd >= 0)
		close(c->efd);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cv);
	free(c);
}
