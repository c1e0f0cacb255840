package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"
)

// defaultDebounce is how long Watch waits after the last file event before
// reloading: editors and ConfigMap updates produce bursts of events.
const defaultDebounce = 100 * time.Millisecond

// Store holds the current Snapshot and replaces it on reload (SPEC 3.6): a
// new policy is loaded and validated first, then swapped atomically; an
// invalid one is rejected, logged and counted, and the old one kept. Its
// methods are safe for concurrent use.
type Store struct {
	cfg      Config
	log      *slog.Logger
	metrics  *metrics
	now      func() time.Time
	debounce time.Duration

	current atomic.Pointer[Snapshot]

	mu     sync.Mutex  // serialises reloads and their callbacks
	loaded fingerprint // content of the current snapshot's files

	cbMu      sync.Mutex
	callbacks []func(*Snapshot)

	// watching, when set (by tests), is called once Watch watches.
	watching func()
}

// NewStore loads the policy of cfg and fails when it is invalid (fail
// closed: the proxy does not start without a valid policy, STYLE 35). A nil
// logger discards logs; a nil reg registers no metrics.
func NewStore(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Store, error) {
	return newStore(cfg, logger, reg, time.Now)
}

func newStore(cfg Config, logger *slog.Logger, reg prometheus.Registerer, now func() time.Time) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	snap, fp, err := load(cfg)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("policy metrics: %w", err)
	}
	s := &Store{cfg: cfg, log: logger, metrics: m, now: now, debounce: defaultDebounce, loaded: fp}
	s.current.Store(snap)
	m.loaded(snap, now())
	s.logLoaded("policy loaded", snap)
	return s, nil
}

// Current returns the current Snapshot; it is never nil.
func (s *Store) Current() *Snapshot { return s.current.Load() }

// OnReload registers fn to run after each successful reload, with the new
// Snapshot (the proxy re-checks live connections there, SPEC 3.6).
// Callbacks run in registration order, one reload at a time, on the
// goroutine that reloads; they must not call Reload.
func (s *Store) OnReload(fn func(*Snapshot)) {
	s.cbMu.Lock()
	defer s.cbMu.Unlock()
	s.callbacks = append(s.callbacks, fn)
}

// Reload loads the policy files again. When they are valid the new Snapshot
// replaces the current one and the OnReload callbacks run; otherwise the
// current Snapshot is kept, and the failure is logged, counted and
// returned.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, fp, err := load(s.cfg)
	if err != nil {
		s.metrics.failed()
		s.log.Error("policy reload failed; keeping the previous policy", "err", err)
		return fmt.Errorf("reload policy: %w", err)
	}
	s.current.Store(snap)
	s.loaded = fp
	s.metrics.reloadSuccess.Inc()
	s.metrics.loaded(snap, s.now())
	s.logLoaded("policy reloaded", snap)
	s.cbMu.Lock()
	callbacks := slices.Clone(s.callbacks)
	s.cbMu.Unlock()
	for _, fn := range callbacks {
		fn(snap)
	}
	return nil
}

func (s *Store) logLoaded(msg string, snap *Snapshot) {
	s.log.Info(msg, "summary", snap.Summary())
	for _, w := range snap.warnings {
		s.log.Warn("policy warning", "warning", w)
	}
}

// Watch reloads the policy when its files change, until ctx is done (then
// it returns nil). It watches the directories of the files rather than the
// files, and compares file contents after each burst of events (debounced),
// so that it follows editors that write a new file and rename it over the
// old one, and Kubernetes ConfigMap volumes, where the file is a symlink
// through a ..data symlink that is swapped to a new directory. The
// directories of symlink targets are watched too, and re-resolved after
// each change. It returns an error when it cannot watch at all.
func (s *Store) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch policy files: %w", err)
	}
	defer w.Close()
	var watched []string
	for _, dir := range s.watchDirs() {
		if err := w.Add(dir); err != nil {
			return fmt.Errorf("watch policy directory %q: %w", dir, err)
		}
		watched = append(watched, dir)
	}
	// Re-resolve symlinks: watch new target directories, drop old ones.
	resync := func() {
		want := s.watchDirs()
		for _, dir := range watched {
			if !slices.Contains(want, dir) {
				_ = w.Remove(dir) // may be gone already
			}
		}
		watched = watched[:0]
		for _, dir := range want {
			if err := w.Add(dir); err != nil {
				s.log.Debug("policy directory not watched", "dir", dir, "err", err)
				continue
			}
			watched = append(watched, dir)
		}
	}
	s.mu.Lock()
	attempted := s.loaded
	s.mu.Unlock()
	// check reloads when the content differs from the last attempt, so that
	// unrelated files in the directory and a bad file that stays bad do
	// not cause reloads.
	check := func() {
		_, fp, _ := readFiles(s.cfg.Files)
		if fp == attempted {
			return
		}
		attempted = fp
		_ = s.Reload() // logged and counted by Reload
	}
	check() // changes between NewStore and Watch
	if s.watching != nil {
		s.watching()
	}

	var timer *time.Timer
	var fire <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("policy watcher closed")
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			if timer == nil {
				timer = time.NewTimer(s.debounce)
			} else {
				timer.Reset(s.debounce)
			}
			fire = timer.C
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("policy watcher closed")
			}
			s.metrics.watchErrors.Inc()
			s.log.Warn("policy watch error", "err", err)
		case <-fire:
			fire = nil
			check()
			resync()
		}
	}
}

// watchDirs returns the directories to watch, sorted: those of the files
// as configured and of their resolved symlink targets.
func (s *Store) watchDirs() []string {
	var dirs []string
	for _, f := range s.cfg.Files {
		abs, err := filepath.Abs(f)
		if err != nil {
			continue
		}
		dirs = append(dirs, filepath.Dir(abs))
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
	}
	slices.Sort(dirs)
	return slices.Compact(dirs)
}
