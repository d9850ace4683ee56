# mk/docs.mk - the man pages and the systemd unit (issue 7, "Packaging").
# Included by the top-level Makefile.
#
#   make man            build/man/elemtactl.8, elemta-stat.8, elemta.yaml.5,
#                       elemta-plugin.3 from their scdoc sources
#                       docs/man/*.scd (Debian package scdoc)
#   make install-man    the pages into $(DESTDIR)$(MANDIR)/man{3,5,8}
#   make install-unit   scripts/elemta.service into $(DESTDIR)$(UNITDIR),
#                       /usr/sbin rewritten to $(SBINDIR)
#
# A page's section is the last part of its name: docs/man/NAME.S.scd
# becomes build/man/NAME.S and is installed into manS/.

MANDIR    ?= $(PREFIX)/share/man
UNITDIR   ?= $(LIBDIR)/systemd/system
SCDOC     ?= scdoc

MAN_SRC   := $(wildcard docs/man/*.scd)
MAN_PAGES := $(patsubst docs/man/%.scd,$(B)/man/%,$(MAN_SRC))

man: $(MAN_PAGES)

# Through a temporary file, so a failed conversion leaves no page behind.
$(B)/man/%: docs/man/%.scd | deps
	@mkdir -p $(dir $@)
	$(SCDOC) < $< > $@.tmp
	@mv $@.tmp $@

install-man: man
	@for p in $(MAN_PAGES); do \
		s=$${p##*.}; \
		install -d $(DESTDIR)$(MANDIR)/man$$s || exit 1; \
		echo "install -m 644 $$p $(DESTDIR)$(MANDIR)/man$$s/"; \
		install -m 644 $$p $(DESTDIR)$(MANDIR)/man$$s/ || exit 1; \
	done

# Rewritten whenever SBINDIR changes (cmp keeps the timestamp otherwise).
$(B)/elemta.service: scripts/elemta.service FORCE
	@mkdir -p $(dir $@)
	@sed -e 's|/usr/sbin/|$(SBINDIR)/|g' $< > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

install-unit: $(B)/elemta.service
	install -d $(DESTDIR)$(UNITDIR)
	install -m 644 $(B)/elemta.service $(DESTDIR)$(UNITDIR)/elemta.service

.PHONY: man install-man install-unit
