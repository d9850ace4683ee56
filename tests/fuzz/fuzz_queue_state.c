/*
 * fuzz_queue_state.c - libFuzzer target for the queue's on-disk readers
 * (common/queue_state.c: the per-recipient state file; common/queue_file.c:
 * the envelope after each spool file), the files elemta-queued and
 * `elemtactl queue` read back after a crash, a disk error or an edit.
 *
 * Built and run by mk/fuzz.mk / scripts/fuzz.  The first input byte picks
 * the reader; the rest is the file.  Promises checked:
 *  - queue_state_parse either fails or gives a state that formats to a
 *    text that parses again to the same state (round trip), with no
 *    control byte in any text and at most QUEUE_STATE_RCPT_MAX
 *    recipients;
 *  - queue_envelope_parse either fails or gives a size that leaves the
 *    envelope inside the bytes given, a queue-id, and at least one
 *    recipient, none of them (nor a decoded ENVID or ORCPT) holding a
 *    control byte, and NOTIFY=NEVER alone;
 *  - nothing reads past the bytes given (ASan), nothing leaks.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "queue_file.h"
#include "queue_state.h"

#include "fuzz.h"

/* state_equal - the fields the file holds. */
static bool
state_equal(const struct queue_state *a, const struct queue_state *b)
{
	if (a->hold != b->hold || a->warned != b->warned || a->nrcpt != b->nrcpt ||
	    strcmp(a->bounce_id, b->bounce_id) != 0)
		return false;
	for (size_t i = 0; i < a->nrcpt; i++) {
		const struct queue_rcpt_state *x = &a->rcpts[i], *y = &b->rcpts[i];

		if (x->status != y->status || x->attempts != y->attempts ||
		    x->next_attempt != y->next_attempt ||
		    x->last_attempt != y->last_attempt || x->code != y->code ||
		    strcmp(x->enhanced, y->enhanced) != 0 ||
		    strcmp(x->text, y->text) != 0)
			return false;
	}
	return true;
}

/* fuzz_state - the state file reader. */
static void
fuzz_state(const char *data, size_t size)
{
	struct queue_state st, again;
	struct strbuf sb = STRBUF_INIT(0);
	struct error err;

	if (queue_state_parse(data, size, &st, &err) == 0) {
		FUZZ_CHECK(st.nrcpt <= QUEUE_STATE_RCPT_MAX, "%zu rcpts", st.nrcpt);
		for (size_t i = 0; i < st.nrcpt; i++)
			for (const char *p = st.rcpts[i].text; *p; p++)
				FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f,
				    "control byte in text");
		FUZZ_CHECK(queue_state_format(&st, &sb) == 0, "format failed");
		FUZZ_CHECK(queue_state_parse(sb.data, sb.len, &again, &err) == 0,
		    "re-parse failed: %s", err.text);
		FUZZ_CHECK(state_equal(&st, &again), "round trip differs");
		queue_state_free(&again);
	}
	queue_state_free(&st);
	strbuf_free(&sb);
}

/* fuzz_envelope - the envelope reader over the whole input as a file. */
static void
fuzz_envelope(const char *data, size_t size)
{
	struct queue_envelope_read env;
	struct error err;

	if (queue_envelope_parse(data, size, size, &env, &err) == 0) {
		FUZZ_CHECK(env.size <= size - QUEUE_FILE_SIZE_LINE, "size %llu",
		    (unsigned long long)env.size);
		FUZZ_CHECK(env.id[0] != '\0' && env.recipient_count > 0,
		    "incomplete envelope accepted");
		for (size_t i = 0; i < env.recipient_count; i++) {
			for (const char *p = env.recipients[i]; *p; p++)
				FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f,
				    "control byte in a recipient");
			/* DSN values are decoded xtext: still no control. */
			for (const char *p = env.orcpt[i]; p != NULL && *p; p++)
				FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f,
				    "control byte in an ORCPT");
			FUZZ_CHECK((env.notify[i] & DSN_NOTIFY_NEVER) == 0 ||
			    env.notify[i] == DSN_NOTIFY_NEVER,
			    "NEVER with another NOTIFY keyword");
		}
		for (const char *p = env.envid; p != NULL && *p; p++)
			FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f,
			    "control byte in the ENVID");
	}
	queue_envelope_free(&env);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		fuzz_envelope((const char *)data + 1, size - 1);
	else
		fuzz_state((const char *)data + 1, size - 1);
	return 0;
}
