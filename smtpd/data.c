/*
 * data.c - the DATA body state machine (see data.h for its promises).
 *
 * Called by session.c for every chunk of message bytes a client sends
 * after 354, and by the unit tests.  The input is untrusted and arrives
 * split anywhere; every piece of state lives in struct data_machine, so a
 * CR at the end of one chunk and its LF at the start of the next behave
 * exactly like CR LF in one chunk.  This is the only per-byte code of
 * smtpd, so the common case (text inside a line) is a tight copy loop.
 */
#include <string.h>

#include "data.h"

/* data_state_name - for logs and tests. */
const char *
data_state_name(enum data_state s)
{
	switch (s) {
	case DATA_BOL: return "BOL";
	case DATA_BOL_WEAK: return "BOL_WEAK";
	case DATA_DOT: return "DOT";
	case DATA_DOT_WEAK: return "DOT_WEAK";
	case DATA_DOT_CR: return "DOT_CR";
	case DATA_TEXT: return "TEXT";
	case DATA_CR: return "CR";
	case DATA_END: return "END";
	}
	return "?";
}

/* data_machine_init - ready for the first byte after the 354: the CRLF
 * of the DATA command counts as the CRLF before a possible ".". */
void
data_machine_init(struct data_machine *m)
{
	memset(m, 0, sizeof(*m));
	m->state = DATA_BOL;
}

/* data_line_add - account n more octets of the current line. */
static inline void
data_line_add(struct data_machine *m, size_t n)
{
	m->line_len += n;
	if (m->line_len > DATA_LINE_MAX - 2)
		m->line_too_long = true;
}

/* data_machine_feed - the byte-level machine; see data.h. */
int
data_machine_feed(struct data_machine *m, const char *in, size_t len,
    char *out, size_t *out_len, size_t *consumed)
{
	size_t i = 0, o = 0;
	int ended = 0;

	while (i < len && !ended) {
		char c = in[i];

		switch (m->state) {
		case DATA_TEXT: {
			/* Hot path: copy up to the next CR or LF. */
			size_t k = i;

			while (k < len && in[k] != '\r' && in[k] != '\n')
				k++;
			if (k > i) {
				memcpy(out + o, in + i, k - i);
				o += k - i;
				data_line_add(m, k - i);
				i = k;
				continue;
			}
			i++;
			if (c == '\r') {
				m->state = DATA_CR;
			} else {
				/* bare LF: converted, never a real line end */
				m->bare_newline = true;
				out[o++] = '\r';
				out[o++] = '\n';
				m->line_len = 0;
				m->state = DATA_BOL_WEAK;
			}
			break;
		}
		case DATA_BOL:
		case DATA_BOL_WEAK:
			i++;
			if (c == '.') {
				m->state = m->state == DATA_BOL ? DATA_DOT :
				    DATA_DOT_WEAK;
			} else if (c == '\r') {
				m->state = DATA_CR;
			} else if (c == '\n') {
				m->bare_newline = true;
				out[o++] = '\r';
				out[o++] = '\n';
				m->state = DATA_BOL_WEAK;
			} else {
				out[o++] = c;
				data_line_add(m, 1);
				m->state = DATA_TEXT;
			}
			break;
		case DATA_DOT:
		case DATA_DOT_WEAK:
			i++;
			if (c == '\r' && m->state == DATA_DOT) {
				m->state = DATA_DOT_CR;
			} else if (c == '\r') {
				/* a lone dot after a converted break: kept */
				out[o++] = '.';
				data_line_add(m, 1);
				m->state = DATA_CR;
			} else if (c == '\n') {
				/* "." ended by a bare LF: kept, not the end */
				m->bare_newline = true;
				out[o++] = '.';
				out[o++] = '\r';
				out[o++] = '\n';
				m->line_len = 0;
				m->state = DATA_BOL_WEAK;
			} else {
				/* the stuffed dot goes; c starts the line */
				out[o++] = c;
				data_line_add(m, 1);
				m->state = DATA_TEXT;
			}
			break;
		case DATA_DOT_CR:
			if (c == '\n') {
				i++;
				m->state = DATA_END;
				ended = 1;
				break;
			}
			/* ".\r" then not LF: the CR is bare.  Keep the dot,
			 * convert the CR, and look at c again at a weak line
			 * start (c itself is not consumed here). */
			m->bare_newline = true;
			out[o++] = '.';
			out[o++] = '\r';
			out[o++] = '\n';
			m->line_len = 0;
			m->state = DATA_BOL_WEAK;
			break;
		case DATA_CR:
			if (c == '\n') {
				i++;
				out[o++] = '\r';
				out[o++] = '\n';
				m->line_len = 0;
				m->state = DATA_BOL;
				break;
			}
			/* The held CR is bare (CR CR LF included): convert it
			 * and look at c again at a weak line start. */
			m->bare_newline = true;
			out[o++] = '\r';
			out[o++] = '\n';
			m->line_len = 0;
			m->state = DATA_BOL_WEAK;
			break;
		case DATA_END:
			ended = 1;
			break;
		}
	}
	m->size += o;
	*out_len = o;
	*consumed = i;
	return m->state == DATA_END;
}
