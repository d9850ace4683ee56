/*
 * peer_table.h - concurrent connections per client address, counted
 * across every smtpd worker of one elemtactl (server.max_connections_per_ip
 * is global, like Postfix's anvil, but without a process or a lock).
 *
 * elemtactl creates one shared memory object (memfd) at start, before the
 * first smtpd worker, and passes it to every smtpd worker together with a
 * slot index (ELEMTA_PEER_FD, ELEMTA_PEER_SLOT).  The object holds
 * PEER_TABLE_SLOTS slots; each slot is an open-addressing hash table
 * (address -> connections) with exactly one writer, the worker given that
 * slot, and every worker reads every slot.  A worker zeroes its slot when
 * it attaches (its predecessor may have crashed), elemtactl zeroes the
 * slot of a worker it reaped, so no dead process leaves counts behind.
 *
 * Readers take no lock and never wait for a writer: see peer_table.c for
 * the memory ordering and for how far a sum can be off while connections
 * race.  Used by smtpd/server.c (count, add, remove) and by elemtactl's
 * supervisor (create, reset a slot).
 */
#ifndef ELEMTA_PEER_TABLE_H
#define ELEMTA_PEER_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "error.h"

/* Slots in elemtactl's table: twice the largest server.workers config.c
 * allows (64), so that a whole generation can start while the previous
 * one still finishes its sessions after a reload. */
#define PEER_TABLE_SLOTS 128

struct peer_table;

/* peer_table_create - a new shared table (memfd, close-on-exec, sealed
 * against resizing) of slots slots, each with room for the addresses of
 * max_connections sessions (capacity: the power of two >= 2 x
 * max_connections, at least 16).  Returns the descriptor (the caller owns
 * it) or -1 (err). */
int peer_table_create(unsigned slots, unsigned max_connections,
    struct error *err);

/* peer_table_room - how many distinct addresses each slot of a table
 * created for max_connections holds (at least 1.5 x max_connections):
 * elemtactl refuses a reload whose server.max_connections exceeds it. */
unsigned peer_table_room(unsigned max_connections);

/* peer_table_reset_slot - zero slot of the table behind fd (elemtactl,
 * after the slot's process was reaped).  0, or -1 (err). */
int peer_table_reset_slot(int fd, unsigned slot, struct error *err);

/* peer_table_attach - map the table behind fd and take slot as this
 * process's own: zeroed, then visible to readers.  fd is duplicated (the
 * caller keeps its own).  Returns the table (peer_table_close) or NULL
 * (err: not a peer table, slot out of range, mapping failed). */
struct peer_table *peer_table_attach(int fd, unsigned slot,
    struct error *err);

/* peer_table_new_private - a table of one slot of this process only (smtpd
 * started without elemtactl), sized for max_connections. */
struct peer_table *peer_table_new_private(unsigned max_connections,
    struct error *err);

/* peer_table_from_env - the table elemtactl passed: ELEMTA_PEER_FD and
 * ELEMTA_PEER_SLOT (decimal).  *inherited tells whether they were set;
 * when neither is, a private table sized for max_connections.  NULL
 * (err) when they are malformed or the table cannot be used. */
struct peer_table *peer_table_from_env(unsigned max_connections,
    bool *inherited, struct error *err);

/* peer_table_count - connections from ip summed over every slot in use
 * (this process's own included). */
unsigned peer_table_count(const struct peer_table *t, const struct addr_ip *ip);

/* peer_table_add - one more connection from ip in the own slot.  0, or -1
 * when a new address does not fit (the slot is 3/4 full: more distinct
 * addresses than the max_connections it was sized for). */
int peer_table_add(struct peer_table *t, const struct addr_ip *ip);

/* peer_table_remove - one connection from ip ended (an address not in
 * the own slot is ignored); the entry goes at zero. */
void peer_table_remove(struct peer_table *t, const struct addr_ip *ip);

/* peer_table_close - give the own slot up (zeroed, skipped by readers),
 * unmap, close the descriptor.  NULL is fine. */
void peer_table_close(struct peer_table *t);

/* peer_table_slot, peer_table_slots, peer_table_capacity - for logs;
 * peer_table_holds - the distinct addresses t's own slot takes (the
 * table's size was fixed when elemtactl started, whatever a reload set
 * server.max_connections to since). */
unsigned peer_table_slot(const struct peer_table *t);
unsigned peer_table_slots(const struct peer_table *t);
unsigned peer_table_capacity(const struct peer_table *t);
unsigned peer_table_holds(const struct peer_table *t);

/* peer_table_home - the index where ip's probe sequence starts (the same
 * in every slot); for tests that need colliding addresses. */
size_t peer_table_home(const struct peer_table *t, const struct addr_ip *ip);

#endif
