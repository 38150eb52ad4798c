# mxgate build. Every directory under src/ other than lib/ with a main.c is
# one program, bin/mxgate-<dir>; its other sources form an archive so unit
# tests can link them without main(). tests/unit/test_<dir>_*.c link the
# archive of <dir> (test_lib_*.c only the library).

CC      ?= cc
BUILD   ?= build
BIN     ?= bin
OPT     ?= -O2
SAN     ?=
CFLAGS_ALL  = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror $(OPT) -g \
              -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE $(SAN) \
              -Isrc/lib $(CFLAGS)
LDFLAGS_ALL = -pie -Wl,-z,relro,-z,now -Wl,--as-needed $(SAN) $(LDFLAGS)
LIBS    = -lopendkim -lcdb -lssl -lcrypto -lcares -lcrypt -lz -lm

# The programs exec'd for every connection or message are linked
# statically (full RELRO): under tcpserver, loading and
# relocating libcrypto and friends at each exec cost more than the
# session itself. Sanitizer builds stay dynamic.
# They are not PIE: a static PIE relocates its 21,000 pointers at every
# exec. PIE=1 links them as static PIE, with ASLR of the binary (see
# docs/decisions.md, "Listener and queue"; make clean first, the link
# does not track it).
# They are linked by lld in the order of src/smtpd/startup.order (made by
# bench/startup/order.py): the code and data a session's start runs through
# sit together, and a start faults in fewer pages of the 8 MB binary
# (docs/bench.md, "Start-up under tcpserver").
STATIC_PROGS := smtpd queue
STARTUP_ORDER := src/smtpd/startup.order
export MXGATE_PIE := $(PIE)
ifeq ($(SAN),)
STATIC_LDFLAGS = $(if $(PIE),-static-pie,-static -no-pie) -Wl,-z,relro,-z,now -fuse-ld=lld \
                 -Wl,--symbol-ordering-file=$(STARTUP_ORDER) -Wl,--no-warn-symbol-ordering $(LDFLAGS)
STATIC_LIBS    = -lbsd -lmd -ldb -lpthread
endif

PROGDIRS := $(patsubst src/%/main.c,%,$(wildcard src/*/main.c))
PROGS    := $(addprefix $(BIN)/mxgate-,$(PROGDIRS))
LIBSRC   := $(wildcard src/lib/*.c)
LIBOBJ   := $(patsubst src/%.c,$(BUILD)/%.o,$(LIBSRC))
LIBA     := $(BUILD)/libmxgate.a
UNITSRC  := $(wildcard tests/unit/test_*.c)
UNITS    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNITSRC))

.PHONY: all deps check unit it asan bench run stop clean fuzz install uninstall deb build-deps
all: $(PROGS)

$(BUILD)/%.o: src/%.c $(wildcard src/lib/*.h) $(wildcard src/*/*.h) $(wildcard src/lib/*.def)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -I$(dir $<) -c -o $@ $<

$(LIBA): $(LIBOBJ)
	@rm -f $@; ar rcs $@ $^

define PROG_template
$(1)_SRC := $$(filter-out src/$(1)/main.c,$$(wildcard src/$(1)/*.c))
$(1)_OBJ := $$(patsubst src/%.c,$$(BUILD)/%.o,$$($(1)_SRC))
$$(BUILD)/lib$(1).a: $$($(1)_OBJ)
	@rm -f $$@; ar rcs $$@ $$^ $$(if $$^,,)
$$(BIN)/mxgate-$(1): $$(BUILD)/$(1)/main.o $$(BUILD)/lib$(1).a $$(LIBA)
	@mkdir -p $$(BIN)
	$$(CC) $$(if $$(and $$(STATIC_LDFLAGS),$$(filter $(1),$$(STATIC_PROGS))),$$(STATIC_LDFLAGS),$$(LDFLAGS_ALL)) \
	  -o $$@ $$(filter-out $$(STARTUP_ORDER),$$^) $$(LIBS) $$(if $$(filter $(1),$$(STATIC_PROGS)),$$(STATIC_LIBS)) 2>&1 | grep -v 'statically linked\|in function' >&2 || true
	@test -x $$@
endef
$(foreach p,$(PROGDIRS),$(eval $(call PROG_template,$(p))))

# mxgate-listen serves sessions with the smtpd session engine
$(BUILD)/listen/%.o: CFLAGS_ALL += -Isrc/smtpd
$(BIN)/mxgate-listen: $(BUILD)/libsmtpd.a $(BUILD)/libqueue.a
$(BIN)/mxgate-listen: LIBS := $(BUILD)/libsmtpd.a $(BUILD)/libqueue.a $(LIBA) $(LIBS)

$(addprefix $(BIN)/mxgate-,$(STATIC_PROGS)): $(if $(STATIC_LDFLAGS),$(STARTUP_ORDER))

# mxgate-smtpd runs the embedded queue in its own process when QMAILQUEUE is unset
$(BIN)/mxgate-smtpd: $(BUILD)/libqueue.a
$(BIN)/mxgate-smtpd: LIBS := $(BUILD)/libqueue.a $(LIBA) $(LIBS)

# mxgate-send delivers queue entries (src/queue) and Maildirs as mxgate-queue does
$(BUILD)/send/%.o: CFLAGS_ALL += -Isrc/queue
$(BIN)/mxgate-send: $(BUILD)/libqueue.a
$(BIN)/mxgate-send: LIBS := $(BUILD)/libqueue.a $(LIBA) $(LIBS)

# a unit test links the archive of the program its name starts with
$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIBA) $(foreach p,$(PROGDIRS),$(BUILD)/lib$(p).a)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Wno-unused-parameter -Isrc/$(firstword $(subst _, ,$*)) $(LDFLAGS_ALL) -o $@ $< \
	  $(if $(filter lib,$(firstword $(subst _, ,$*))),,$(BUILD)/lib$(firstword $(subst _, ,$*)).a) $(LIBA) -lcmocka $(LIBS)

# the command-line driver over mxgate-send's SMTP/LMTP client, for tests/it/test_send_client.py
$(BUILD)/tests/smtpclient: tests/send/smtpclient.c src/send/client.c src/send/send.h $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Isrc/send $(LDFLAGS_ALL) -o $@ tests/send/smtpclient.c src/send/client.c $(LIBA) $(LIBS)
unit: $(BUILD)/tests/smtpclient

deps:
	@sh scripts/deps.sh

build-deps:
	@sh scripts/deps.sh build

unit: $(PROGS) $(UNITS)

check: deps
	@$(MAKE) --no-print-directory all unit
	@sh tests/run.sh $(BUILD) $(BIN)

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan BIN=bin-asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" all unit
	@ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  sh tests/run.sh build-asan bin-asan

fuzz:
	@sh tests/fuzz/build.sh

bench: deps all
	@sh bench/run.sh

run: deps all
	@sh scripts/run-demo.sh start

stop:
	@sh scripts/run-demo.sh stop

# make install [DESTDIR=] [PREFIX=/usr/local] [BINDIR= SBINDIR= DATADIR= MANDIR=
# SYSTEMDDIR=] [MXGATE_HOME=/var/mxgate MXGATE_USER=mxgate MXGATE_GROUP=
# MXGATE_LOGDIR= MXGATE_LOGUSER=]: the defaults are in scripts/install.sh
INSTALL_VARS = BIN='$(BIN)' DESTDIR='$(DESTDIR)' PREFIX='$(PREFIX)' BINDIR='$(BINDIR)' \
  SBINDIR='$(SBINDIR)' DATADIR='$(DATADIR)' PKGDATADIR='$(PKGDATADIR)' MANDIR='$(MANDIR)' SYSTEMDDIR='$(SYSTEMDDIR)' \
  MXGATE_HOME='$(MXGATE_HOME)' MXGATE_USER='$(MXGATE_USER)' MXGATE_GROUP='$(MXGATE_GROUP)' \
  MXGATE_LOGDIR='$(MXGATE_LOGDIR)' MXGATE_LOGUSER='$(MXGATE_LOGUSER)'
install: all
	@$(INSTALL_VARS) sh scripts/install.sh install

uninstall:
	@$(INSTALL_VARS) sh scripts/install.sh uninstall

deb: all
	@BIN='$(BIN)' sh scripts/deb.sh

clean:
	rm -rf build build-asan bin bin-asan
