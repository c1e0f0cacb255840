# mqtt-authproxy — `make help` lists the targets.
GO       ?= go
BIN      := bin/mqtt-authproxy
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
FUZZTIME ?= 30s

.PHONY: help build run test bench bench-smoke bench-go fuzz cover lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/mqtt-authproxy
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/mqtt-authproxy

run: build ## run a local stack: test issuer + Mosquitto + proxy; prints a token and client commands
	$(BIN) dev

test: ## go vet, then every test with the race detector (what CI runs)
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

bench: ## end-to-end benchmark: proxy vs direct Mosquitto vs byte relay (goroutines, and an epoll loop) vs HAProxy (installed when root can), hops over TCP and a Unix socket; prints one table
	@PATH="$$PATH:/usr/sbin"; command -v haproxy >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q haproxy >/dev/null 2>&1 && echo "installed haproxy"; } || echo "haproxy not installed: its column is skipped"
	$(GO) run ./cmd/mqtt-authproxy-bench

bench-smoke: ## the same benchmark in a few seconds (also run by make test, as a Go test)
	$(GO) run ./cmd/mqtt-authproxy-bench -smoke

bench-go: ## Go micro-benchmarks: codec, token verification, policy checks, CONNECT round trip
	$(GO) test -run '^$$' -bench . -benchmem ./packetcodec/ ./authz/... ./test/

fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	$(GO) test -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime $(FUZZTIME) ./packetcodec/
	$(GO) test -run '^$$' -fuzz '^FuzzParseTemplate$$' -fuzztime $(FUZZTIME) ./authz/topic/
	$(GO) test -run '^$$' -fuzz '^FuzzSubset$$' -fuzztime $(FUZZTIME) ./authz/topic/
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./authz/policy/
	$(GO) test -run '^$$' -fuzz '^FuzzGrantsTrie$$' -fuzztime $(FUZZTIME) ./authz/policy/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./authz/token/
	$(GO) test -run '^$$' -fuzz '^FuzzAppendString$$' -fuzztime $(FUZZTIME) ./proxy/audit/

cover: ## test coverage summary
	$(GO) test -count=1 -coverprofile=cover.out ./... && $(GO) tool cover -func=cover.out | tail -1

lint: ## go vet and gofmt (must print nothing)
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

clean: ## remove build output
	rm -rf bin cover.out
