/*
 * peer_table.c - the shared table of concurrent connections per client
 * address (server.max_connections_per_ip across all smtpd workers).
 *
 * Called by smtpd/server.c (count at accept, add, remove at close) and by
 * elemtactl's supervisor (create once at start, reset the slot of a
 * reaped worker).  The memory is shared between the unprivileged smtpd
 * workers, which all run as the same user.  elemtactl (root) never maps
 * it: it writes zeroes into ranges of the object computed from the header
 * after validating it, and the object is sealed against resizing, so a
 * compromised worker that rewrote the header can make it zero the wrong
 * slot (connection counts of the other workers) and nothing else.
 *
 * Layout of the memfd (every number in host byte order):
 *
 *   page 0         struct peer_file_head: magic, version, slots, capacity,
 *                  slot size, hash seed (written by elemtactl before any
 *                  worker exists, never changed afterwards); from byte
 *                  PEER_DIR_OFFSET on, one struct peer_slot_head per slot
 *                  (sequence count, owner pid; owner 0 = not in use)
 *   slot k         at PEER_HEAD_BYTES + k * slot_bytes, page-aligned:
 *                  `capacity` struct peer_entry (16 address bytes as in
 *                  struct addr_ip, count; count 0 = empty)
 *
 * The slot heads sit together in page 0 so that a reader finds the slots
 * in use by reading one page: a read of a never-written page of a memfd
 * allocates it, and the unused slots are meant to cost nothing.
 *
 * Each slot is an open-addressing hash table with linear probing and
 * backward-shift deletion (no tombstones, so a probe ends at the first
 * empty entry).  The hash is seeded with random bits from the header, so
 * a client choosing its IPv6 addresses cannot aim them at one probe run.
 *
 * Concurrency.  A slot has exactly one writer, the worker given it; every
 * worker reads every slot in use.  All shared words are C11 atomics (they
 * are lock-free, hence address-free, so they work across processes):
 *   - a new entry's address words are stored (relaxed) before its count
 *     is stored with release; a reader loads the count with acquire and
 *     then the address, so it never pairs a count with a half-written
 *     address;
 *   - incrementing or decrementing an existing count is one release
 *     store;
 *   - a deletion moves entries backwards, during which a reader walking
 *     the same run could miss an entry or see one twice, so deletions run
 *     inside a sequence count (odd while moving).  A reader retries a slot
 *     whose count changed or was odd, at most PEER_READ_TRIES times, and
 *     then takes what it read: a reader never waits for a writer, and a
 *     writer that dies mid-deletion (the count stays odd) cannot block
 *     anybody.  Its slot is zeroed when elemtactl reaps it and again when
 *     the next worker attaches.
 * The sum is therefore exact except for connections racing at the same
 * instant: two workers accepting from one address at once can both see
 * `limit - 1` and both accept, so the limit can be exceeded by at most
 * (smtpd processes - 1) connections, and only while those accepts race
 * (each worker decides one accept at a time and always sees its own
 * earlier adds).  A reader that gives up retrying (a slot whose writer
 * deletes without pause for PEER_READ_TRIES rounds) may miss or repeat
 * that slot's count for the one decision it is making.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fdpass.h"
#include "peer_table.h"

#define PEER_TABLE_MAGIC 0x54504c45u   /* "ELPT" */
#define PEER_TABLE_VERSION 1u
#define PEER_HEAD_BYTES 4096u          /* page 0: header, slot heads   */
#define PEER_DIR_OFFSET 64u            /* the slot heads in page 0     */
#define PEER_ALIGN 4096u               /* slots start on a page (hole
                                        * punching frees whole pages)  */
#define PEER_MIN_CAPACITY 16u
#define PEER_MAX_CAPACITY (1u << 24)
#define PEER_MAX_SLOTS ((PEER_HEAD_BYTES - PEER_DIR_OFFSET) / \
    (unsigned)sizeof(struct peer_slot_head))
#define PEER_READ_TRIES 8u             /* then take what was read      */
#define PEER_READ_SPIN 3u              /* tries before yielding the CPU */

/* Shared words must be lock-free: a lock-based atomic would use a lock
 * private to each process. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");

struct peer_file_head {
	uint32_t magic;
	uint32_t version;
	uint32_t slots;
	uint32_t capacity;            /* entries per slot, a power of two  */
	uint64_t slot_bytes;          /* multiple of PEER_ALIGN            */
	uint64_t seed;                /* hash key                          */
};

struct peer_slot_head {
	_Atomic uint32_t seq;         /* odd while entries move            */
	_Atomic uint32_t owner;       /* the writer's pid; 0: not in use   */
};

struct peer_entry {
	_Atomic uint32_t key[4];      /* struct addr_ip.bytes              */
	_Atomic uint32_t count;       /* connections; 0: empty             */
};

_Static_assert(sizeof(struct peer_file_head) <= PEER_DIR_OFFSET,
    "file header fits before the slot heads");
_Static_assert(sizeof(struct peer_slot_head) == 8, "slot heads are packed");
_Static_assert(PEER_TABLE_SLOTS <= PEER_MAX_SLOTS, "slot heads fit page 0");

struct peer_table {
	int fd;                       /* own duplicate, close-on-exec      */
	unsigned char *map;
	size_t map_size;
	unsigned slots;
	unsigned capacity;
	size_t slot_bytes;
	uint64_t seed;
	unsigned own;                 /* the slot this process writes      */
	unsigned used;                /* entries in the own slot           */
};

/*==== Geometry and the header ====*/

/* peer_capacity_for - entries per slot for max_connections sessions. */
static unsigned
peer_capacity_for(unsigned max_connections)
{
	uint64_t want = 2 * (uint64_t)max_connections;
	unsigned cap = PEER_MIN_CAPACITY;

	while (cap < want && cap < PEER_MAX_CAPACITY)
		cap <<= 1;
	return cap;
}

/* peer_room - the distinct addresses a slot of capacity entries takes:
 * probe runs stay short below 3/4, and an empty entry always ends one
 * (peer_find relies on it). */
static unsigned
peer_room(unsigned capacity)
{
	return capacity - capacity / 4;
}

/* peer_table_room - see peer_table.h. */
unsigned
peer_table_room(unsigned max_connections)
{
	return peer_room(peer_capacity_for(max_connections));
}

/* peer_slot_bytes - one slot's size, rounded up to whole pages. */
static uint64_t
peer_slot_bytes(unsigned capacity)
{
	uint64_t n = (uint64_t)capacity * sizeof(struct peer_entry);

	return (n + PEER_ALIGN - 1) / PEER_ALIGN * PEER_ALIGN;
}

/* peer_head_check - is h a header this code can use, within size bytes? */
static int
peer_head_check(const struct peer_file_head *h, uint64_t size,
    struct error *err)
{
	if (h->magic != PEER_TABLE_MAGIC || h->version != PEER_TABLE_VERSION)
		return error_set(err, "not a peer table (version %u)",
		    h->version);
	if (h->slots == 0 || h->slots > PEER_MAX_SLOTS ||
	    h->capacity < PEER_MIN_CAPACITY ||
	    h->capacity > PEER_MAX_CAPACITY ||
	    (h->capacity & (h->capacity - 1)) != 0 ||
	    h->slot_bytes != peer_slot_bytes(h->capacity) ||
	    PEER_HEAD_BYTES + h->slots * h->slot_bytes > size ||
	    PEER_HEAD_BYTES + h->slots * h->slot_bytes > SIZE_MAX)
		return error_set(err, "peer table header is inconsistent "
		    "(%u slots of %u entries in %llu bytes)", h->slots,
		    h->capacity, (unsigned long long)size);
	return 0;
}

/* peer_seed - 64 random bits for the hash (time and pid without them). */
static uint64_t
peer_seed(void)
{
	uint64_t seed;
	struct timespec ts;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) ==
	    (ssize_t)sizeof(seed))
		return seed;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^
	    (uint64_t)ts.tv_sec << 20 ^ (uint64_t)getpid();
}

/* peer_table_create - see peer_table.h. */
int
peer_table_create(unsigned slots, unsigned max_connections, struct error *err)
{
	struct peer_file_head h;
	uint64_t size;
	int fd;

	if (slots == 0 || slots > PEER_MAX_SLOTS)
		return error_set(err, "peer table: %u slots", slots);
	memset(&h, 0, sizeof(h));
	h.magic = PEER_TABLE_MAGIC;
	h.version = PEER_TABLE_VERSION;
	h.slots = slots;
	h.capacity = peer_capacity_for(max_connections);
	h.slot_bytes = peer_slot_bytes(h.capacity);
	h.seed = peer_seed();
	size = PEER_HEAD_BYTES + slots * h.slot_bytes;
	if (size > (uint64_t)INT64_MAX || size > SIZE_MAX)
		return error_set(err, "peer table: %llu bytes is too large",
		    (unsigned long long)size);
	fd = memfd_create("elemta-peers", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd == -1)
		return error_set(err, "memfd_create: %s", strerror(errno));
	/* Sparse: a page costs memory only once a worker writes to it. */
	if (ftruncate(fd, (off_t)size) == -1 ||
	    pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		int e = errno;

		close(fd);
		return error_set(err, "peer table (%llu bytes): %s",
		    (unsigned long long)size, strerror(e));
	}
	/* A worker that shrank the object would make every other worker
	 * touching the lost pages die of SIGBUS.  Best effort: without
	 * sealing support the table still works. */
	(void)fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	return fd;
}

/* peer_zero_range - zeroes in [off, off + len) of fd, the pages given
 * back: the table is a memfd, whose shmem always punches holes (and
 * F_SEAL_SEAL keeps anyone from adding a write seal that would stop it). */
static int
peer_zero_range(int fd, uint64_t off, uint64_t len, struct error *err)
{
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	    (off_t)off, (off_t)len) == 0)
		return 0;
	return error_set(err, "zeroing the peer table: %s", strerror(errno));
}

/* peer_table_reset_slot - see peer_table.h. */
int
peer_table_reset_slot(int fd, unsigned slot, struct error *err)
{
	static const struct peer_slot_head none;
	struct peer_file_head h;
	struct stat st;

	if (fstat(fd, &st) == -1)
		return error_set(err, "peer table: fstat: %s", strerror(errno));
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return error_set(err, "peer table: cannot read the header");
	if (peer_head_check(&h, (uint64_t)st.st_size, err) == -1)
		return -1;
	if (slot >= h.slots)
		return error_set(err, "peer table: no slot %u (%u slots)", slot,
		    h.slots);
	/* Owner 0 first (readers skip the slot), then the entries.  The
	 * owner is dead: nothing writes the slot meanwhile. */
	if (pwrite(fd, &none, sizeof(none), PEER_DIR_OFFSET + (off_t)slot *
	    (off_t)sizeof(none)) != (ssize_t)sizeof(none))
		return error_set(err, "peer table: clearing slot %u: %s", slot,
		    strerror(errno));
	return peer_zero_range(fd, PEER_HEAD_BYTES + slot * h.slot_bytes,
	    h.slot_bytes, err);
}

/*==== Slots ====*/

/* peer_slot_head - slot s's head (in page 0). */
static struct peer_slot_head *
peer_slot_head(const struct peer_table *t, unsigned s)
{
	return (struct peer_slot_head *)(void *)(t->map + PEER_DIR_OFFSET) + s;
}

/* peer_slot_entries - slot s's hash table. */
static struct peer_entry *
peer_slot_entries(const struct peer_table *t, unsigned s)
{
	return (struct peer_entry *)(void *)(t->map + PEER_HEAD_BYTES +
	    (size_t)s * t->slot_bytes);
}

/* peer_key - the address as the four words stored in an entry. */
static void
peer_key(const struct addr_ip *ip, uint32_t key[4])
{
	memcpy(key, ip->bytes, 4 * sizeof(key[0]));
}

/* peer_mix - a 64-bit finaliser (MurmurHash3's fmix64). */
static uint64_t
peer_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* peer_hash_key - the home index of key (seeded; same in every slot). */
static size_t
peer_hash_key(const struct peer_table *t, const uint32_t key[4])
{
	uint64_t a = (uint64_t)key[0] | (uint64_t)key[1] << 32;
	uint64_t b = (uint64_t)key[2] | (uint64_t)key[3] << 32;

	return (size_t)(peer_mix(peer_mix(t->seed ^ a) ^ b) &
	    (t->capacity - 1));
}

/* peer_entry_is - does entry e hold key?  (Relaxed: the caller loaded
 * the count with acquire, or is the slot's writer.) */
static bool
peer_entry_is(struct peer_entry *e, const uint32_t key[4])
{
	for (size_t i = 0; i < 4; i++)
		if (atomic_load_explicit(&e->key[i], memory_order_relaxed) !=
		    key[i])
			return false;
	return true;
}

/* peer_probe - key's count in one slot's entries (0 when absent); at
 * most capacity steps even over a table torn by a concurrent writer. */
static uint32_t
peer_probe(struct peer_entry *e, unsigned capacity, const uint32_t key[4],
    size_t home)
{
	size_t mask = capacity - 1, i = home;

	for (unsigned n = 0; n < capacity; n++, i = (i + 1) & mask) {
		uint32_t c = atomic_load_explicit(&e[i].count,
		    memory_order_acquire);

		if (c == 0)
			return 0;
		if (peer_entry_is(&e[i], key))
			return c;
	}
	return 0;
}

/* peer_slot_read - key's count in slot s as its writer left it: retried
 * while a deletion moves entries (seq odd or changed), bounded. */
static uint32_t
peer_slot_read(const struct peer_table *t, unsigned s, const uint32_t key[4],
    size_t home)
{
	struct peer_slot_head *h = peer_slot_head(t, s);
	struct peer_entry *e = peer_slot_entries(t, s);
	uint32_t c = 0;

	for (unsigned tries = 0; tries < PEER_READ_TRIES; tries++) {
		uint32_t s1, s2;

		if (tries >= PEER_READ_SPIN)
			sched_yield();  /* a writer preempted mid-move */
		s1 = atomic_load_explicit(&h->seq, memory_order_acquire);
		c = peer_probe(e, t->capacity, key, home);
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&h->seq, memory_order_relaxed);
		if (s1 == s2 && (s1 & 1) == 0)
			break;
	}
	return c;
}

/* peer_find - the own slot's index holding key, or of the empty entry
 * where it would go (*found tells which).  Only the writer calls it. */
static size_t
peer_find(const struct peer_table *t, const uint32_t key[4], bool *found)
{
	struct peer_entry *e = peer_slot_entries(t, t->own);
	size_t mask = t->capacity - 1, i = peer_hash_key(t, key);

	/* used < capacity: an empty entry ends the run. */
	for (;; i = (i + 1) & mask) {
		if (atomic_load_explicit(&e[i].count, memory_order_relaxed) == 0) {
			*found = false;
			return i;
		}
		if (peer_entry_is(&e[i], key)) {
			*found = true;
			return i;
		}
	}
}

/* peer_delete - remove the own slot's entry at i: later entries of the
 * run move back into the hole (backward-shift deletion), inside the
 * slot's sequence count so that readers retry instead of missing one. */
static void
peer_delete(struct peer_table *t, size_t i)
{
	struct peer_slot_head *h = peer_slot_head(t, t->own);
	struct peer_entry *e = peer_slot_entries(t, t->own);
	size_t mask = t->capacity - 1, hole = i, j = i;
	uint32_t seq = atomic_load_explicit(&h->seq, memory_order_relaxed);

	/* Begin: odd (a dead predecessor's odd count was reset at attach). */
	atomic_store_explicit(&h->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	for (;;) {
		uint32_t key[4], c;
		size_t home;

		j = (j + 1) & mask;
		c = atomic_load_explicit(&e[j].count, memory_order_relaxed);
		if (c == 0)
			break;
		for (size_t k = 0; k < 4; k++)
			key[k] = atomic_load_explicit(&e[j].key[k],
			    memory_order_relaxed);
		home = peer_hash_key(t, key);
		/* j may fill the hole unless its home lies in (hole, j]:
		 * then it would sit before its home, out of its run. */
		if (((j - home) & mask) < ((j - hole) & mask))
			continue;
		for (size_t k = 0; k < 4; k++)
			atomic_store_explicit(&e[hole].key[k], key[k],
			    memory_order_relaxed);
		atomic_store_explicit(&e[hole].count, c, memory_order_release);
		hole = j;
	}
	atomic_store_explicit(&e[hole].count, 0, memory_order_release);
	for (size_t k = 0; k < 4; k++)
		atomic_store_explicit(&e[hole].key[k], 0, memory_order_relaxed);
	/* End: even again; the release orders every move before it. */
	atomic_store_explicit(&h->seq, seq + 2, memory_order_release);
	t->used--;
}

/* peer_claim - take the own slot: hidden from readers, zeroed (whatever
 * a crashed predecessor left), then published with this process's pid.
 * -1 (err) when the slot cannot be zeroed: not the memfd elemtactl made
 * (a plain memset would race the readers still probing it). */
static int
peer_claim(struct peer_table *t, struct error *err)
{
	struct peer_slot_head *h = peer_slot_head(t, t->own);

	atomic_store_explicit(&h->owner, 0, memory_order_release);
	if (peer_zero_range(t->fd, PEER_HEAD_BYTES + (uint64_t)t->own *
	    t->slot_bytes, t->slot_bytes, err) == -1)
		return -1;
	atomic_store_explicit(&h->seq, 0, memory_order_relaxed);
	t->used = 0;
	atomic_store_explicit(&h->owner, (uint32_t)getpid(),
	    memory_order_release);
	return 0;
}

/*==== Opening and closing ====*/

/* peer_table_attach - see peer_table.h. */
struct peer_table *
peer_table_attach(int fd, unsigned slot, struct error *err)
{
	struct peer_file_head h;
	struct peer_table *t;
	struct stat st;
	void *map;
	int own;

	if (fd < 0 || fstat(fd, &st) == -1) {
		error_set(err, "peer table descriptor %d: %s", fd,
		    fd < 0 ? "invalid" : strerror(errno));
		return NULL;
	}
	if ((uint64_t)st.st_size < PEER_HEAD_BYTES) {
		error_set(err, "peer table descriptor %d: too small", fd);
		return NULL;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		error_set(err, "peer table: mmap: %s", strerror(errno));
		return NULL;
	}
	memcpy(&h, map, sizeof(h));
	if (peer_head_check(&h, (uint64_t)st.st_size, err) == -1) {
		munmap(map, (size_t)st.st_size);
		return NULL;
	}
	if (slot >= h.slots) {
		error_set(err, "peer table: no slot %u (%u slots)", slot,
		    h.slots);
		munmap(map, (size_t)st.st_size);
		return NULL;
	}
	own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (own == -1) {
		error_set(err, "peer table: dup: %s", strerror(errno));
		munmap(map, (size_t)st.st_size);
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	t->fd = own;
	t->map = map;
	t->map_size = (size_t)st.st_size;
	t->slots = h.slots;
	t->capacity = h.capacity;
	t->slot_bytes = (size_t)h.slot_bytes;
	t->seed = h.seed;
	t->own = slot;
	if (peer_claim(t, err) == -1) {
		peer_table_close(t);
		return NULL;
	}
	return t;
}

/* peer_table_new_private - see peer_table.h. */
struct peer_table *
peer_table_new_private(unsigned max_connections, struct error *err)
{
	struct peer_table *t;
	int fd = peer_table_create(1, max_connections, err);

	if (fd == -1)
		return NULL;
	t = peer_table_attach(fd, 0, err);
	close(fd);
	return t;
}

/* peer_table_from_env - see peer_table.h. */
struct peer_table *
peer_table_from_env(unsigned max_connections, bool *inherited,
    struct error *err)
{
	struct peer_table *t;
	long fd = -1, slot = -1;
	int has_fd = fdpass_env_number("ELEMTA_PEER_FD", INT_MAX, &fd);
	int has_slot = fdpass_env_number("ELEMTA_PEER_SLOT", PEER_MAX_SLOTS - 1,
	    &slot);

	*inherited = has_fd != 0 || has_slot != 0;
	if (!*inherited)
		return peer_table_new_private(max_connections, err);
	if (has_fd != 1 || has_slot != 1) {
		if (has_fd == 1)
			close((int)fd);
		error_set(err, "bad ELEMTA_PEER_FD / ELEMTA_PEER_SLOT (both or "
		    "neither, decimal numbers)");
		return NULL;
	}
	t = peer_table_attach((int)fd, (unsigned)slot, err);
	close((int)fd);
	return t;
}

/* peer_table_close - see peer_table.h. */
void
peer_table_close(struct peer_table *t)
{
	if (t == NULL)
		return;
	/* Readers skip the slot from here; elemtactl zeroes it when it
	 * reaps us, and the next owner when it claims it. */
	atomic_store_explicit(&peer_slot_head(t, t->own)->owner, 0,
	    memory_order_release);
	munmap(t->map, t->map_size);
	close(t->fd);
	free(t);
}

/*==== Counting ====*/

/* peer_table_count - see peer_table.h. */
unsigned
peer_table_count(const struct peer_table *t, const struct addr_ip *ip)
{
	uint32_t key[4];
	uint64_t sum = 0;
	size_t home;

	peer_key(ip, key);
	home = peer_hash_key(t, key);
	for (unsigned s = 0; s < t->slots; s++) {
		if (s != t->own && atomic_load_explicit(&peer_slot_head(t,
		    s)->owner, memory_order_acquire) == 0)
			continue;
		sum += peer_slot_read(t, s, key, home);
	}
	return sum > UINT_MAX ? UINT_MAX : (unsigned)sum;
}

/* peer_table_add - see peer_table.h. */
int
peer_table_add(struct peer_table *t, const struct addr_ip *ip)
{
	struct peer_entry *e = peer_slot_entries(t, t->own);
	uint32_t key[4], c;
	bool found;
	size_t i;

	peer_key(ip, key);
	i = peer_find(t, key, &found);
	if (found) {
		c = atomic_load_explicit(&e[i].count, memory_order_relaxed);
		if (c < UINT32_MAX)
			atomic_store_explicit(&e[i].count, c + 1,
			    memory_order_release);
		return 0;
	}
	if (t->used >= peer_room(t->capacity))
		return -1;
	for (size_t k = 0; k < 4; k++)
		atomic_store_explicit(&e[i].key[k], key[k], memory_order_relaxed);
	atomic_store_explicit(&e[i].count, 1, memory_order_release);
	t->used++;
	return 0;
}

/* peer_table_remove - see peer_table.h. */
void
peer_table_remove(struct peer_table *t, const struct addr_ip *ip)
{
	struct peer_entry *e = peer_slot_entries(t, t->own);
	uint32_t key[4], c;
	bool found;
	size_t i;

	peer_key(ip, key);
	i = peer_find(t, key, &found);
	if (!found)
		return;
	c = atomic_load_explicit(&e[i].count, memory_order_relaxed);
	if (c > 1)
		atomic_store_explicit(&e[i].count, c - 1, memory_order_release);
	else
		peer_delete(t, i);
}

/*==== Introspection ====*/

/* peer_table_slot - see peer_table.h. */
unsigned
peer_table_slot(const struct peer_table *t)
{
	return t->own;
}

/* peer_table_slots - see peer_table.h. */
unsigned
peer_table_slots(const struct peer_table *t)
{
	return t->slots;
}

/* peer_table_capacity - see peer_table.h. */
unsigned
peer_table_capacity(const struct peer_table *t)
{
	return t->capacity;
}

/* peer_table_holds - see peer_table.h. */
unsigned
peer_table_holds(const struct peer_table *t)
{
	return peer_room(t->capacity);
}

/* peer_table_home - see peer_table.h. */
size_t
peer_table_home(const struct peer_table *t, const struct addr_ip *ip)
{
	uint32_t key[4];

	peer_key(ip, key);
	return peer_hash_key(t, key);
}
