# Warden's build. `make run` starts a server; `make test` runs every test.
GO        ?= go
BIN       := bin/warden
LISTEN    ?= 127.0.0.1:7800
BENCHTIME ?= 2s
BENCHCOUNT ?= 3
# Flags of the load run (go run ./cmd/loadrun -h in bench/), e.g.
# LOADFLAGS='-duration 10s -concurrency 16'.
LOADFLAGS ?= -sweep 2000,5000,10000
# What `warden version` says: the version and the commit, stamped by
# -ldflags (-dirty: the checkout had uncommitted changes).
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell c=$$(git rev-parse HEAD 2>/dev/null) && { git diff --quiet HEAD -- 2>/dev/null || c=$$c-dirty; echo $$c; })
VERSION   := $(VERSION)
COMMIT    := $(COMMIT)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build run test race fuzz bench check hooks soak image

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/warden
	$(GO) build -o bin/echoapp ./sdk/examples/echoapp

# The example policy hooks, as WebAssembly modules in bin/hooks/.
hooks:
	@mkdir -p bin/hooks
	@for d in policywasm/examples/*/; do \
	  n=$$(basename $$d); echo "building bin/hooks/$$n.wasm"; \
	  GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o bin/hooks/$$n.wasm ./$$d || exit 1; \
	done

# The container image (Containerfile), FROM scratch: the static binary and
# the files beside it are staged in IMAGECTX, so the build pulls nothing.
# IMAGEBUILD='docker build' builds it with Docker instead.
IMAGE      ?= localhost/warden:$(VERSION)
IMAGECTX   ?= bin/image
IMAGEBUILD ?= podman build --format docker --layers=false
CACERTS    ?= /etc/ssl/certs/ca-certificates.crt
image:
	rm -rf $(IMAGECTX)
	mkdir -p $(IMAGECTX)/rootfs/etc/ssl/certs $(IMAGECTX)/datadir/data
	chmod 0700 $(IMAGECTX)/datadir/data
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o $(IMAGECTX)/rootfs/warden ./cmd/warden
	if [ -r $(CACERTS) ]; then cp $(CACERTS) $(IMAGECTX)/rootfs/etc/ssl/certs/; fi
	$(IMAGEBUILD) -f Containerfile --build-arg VERSION=$(VERSION) --build-arg REVISION=$(COMMIT) \
	  --build-arg SOURCE=https://github.com/wardenauthz/warden -t $(IMAGE) $(IMAGECTX)

run: build
	./$(BIN) serve --listen $(LISTEN)

# The whole suite, with the race detector on the packages with concurrency.
test:
	$(GO) vet ./...
	$(GO) test ./...
	$(GO) test -race ./sidecar/... ./admin/... ./sdk/...
	$(GO) test -race -run 'TestHammer' ./policywasm/...
	cd bench && $(GO) vet ./... && $(GO) test -short ./...
	cd deploy/kubernetes && $(GO) vet ./... && $(GO) test ./...

# The long runs: the differential test of decisions over SOAKCASES random
# cases (make test runs 100 000; WARDEN_DIFF_SEED=N reruns a seed a
# failure printed), then Warden at 80% of its maximum for SOAKTIME with a
# mix of tokens and admin writes (report in bench/soak.md).
SOAKCASES ?= 10000000
SOAKTIME ?= 60s
soak:
	WARDEN_DIFF_CASES=$(SOAKCASES) $(GO) test ./sidecar -run '^TestDifferentialDecisions$$' -count=1 -v -timeout 60m
	cd bench && $(GO) run ./cmd/loadrun -soak $(SOAKTIME) -md soak.md

# A short run of every fuzz target (FUZZTIME each).
FUZZTIME ?= 10s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; \
	    $(GO) test $$pkg -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) || exit 1; \
	  done; \
	done

# bench/ is a module of its own, so the main module does not depend on
# what the benchmarks compare Warden with (Open Policy Agent). The Go
# benchmarks go to bench/last.txt; the load run over loopback HTTP (Warden
# and OPA's server, the same load) to bench/load.md and bench/latency.png;
# the front doors' run (each door against what it stands in for: the check
# API, a bare reverse proxy, nginx's auth_request to a server that does
# nothing) to bench/load-doors.md.
bench:
	cd bench && bash -o pipefail -c "$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -count $(BENCHCOUNT) | tee last.txt"
	cd bench && $(GO) run ./cmd/loadrun -md load.md -png latency.png $(LOADFLAGS)
	cd bench && $(GO) run ./cmd/loadrun -doors -md load-doors.md

# Formats, vets and tidies, failing if that changed anything.
check:
	gofmt -l -w .
	$(GO) vet ./...
	$(GO) mod tidy
	cd bench && $(GO) vet ./... && $(GO) mod tidy
	git diff --exit-code -- . ':!bench/last.txt'
