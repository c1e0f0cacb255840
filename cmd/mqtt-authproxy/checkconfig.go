package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/policy"
	"github.com/mqtt-authproxy/mqtt-authproxy/proxy"
	"github.com/mqtt-authproxy/mqtt-authproxy/proxy/listener"
)

// runCheckConfig runs exactly the validation serve runs (STYLE 35) —
// configuration, policy files and the other local files serve reads — without
// touching the network.
func runCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("check-config", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var f commonFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := decodeConfig(f)
	if err != nil {
		// Nothing past a file that does not decode can be checked.
		fmt.Fprintln(stderr, err)
		return 1
	}
	// Every stage runs whatever the one before found, so one run names
	// every problem.
	ok := true
	report := func(title string, err error) {
		if err != nil {
			fmt.Fprintf(stderr, "%s:\n%v\n", title, err)
			ok = false
		}
	}
	report("invalid config", cfg.Validate())
	snap, err := policy.Load(cfg.Policy)
	report("invalid policy", err)
	report("unusable files", checkLocalFiles(cfg))
	if snap != nil {
		for _, w := range snap.Warnings() {
			fmt.Fprintf(stderr, "policy warning: %s\n", w)
		}
	}
	if !ok {
		return 1
	}
	fmt.Fprintf(stdout, "configuration OK (%s)\n", snap.Summary())
	return 0
}

// checkLocalFiles reads the files serve reads besides the configuration and
// the policy, the same way, and reports every one it could not use: the
// upstream password and CA, the listeners' certificates and client CA, and
// the issuers' key files.
func checkLocalFiles(cfg proxy.Config) error {
	var errs []error
	if _, err := upstreamPassword(cfg.Upstream); err != nil {
		errs = append(errs, err)
	}
	if _, err := upstreamDialer(cfg.Upstream); err != nil {
		errs = append(errs, err)
	}
	if t := cfg.Listeners.TLS; t.Address != "" {
		if err := checkCertificate(t.CertFile, t.KeyFile, t.ClientCAFile); err != nil {
			errs = append(errs, fmt.Errorf("listeners.tls: %w", err))
		}
	}
	if w := cfg.Listeners.WebSocket; w.Address != "" && w.CertFile != "" {
		if err := checkCertificate(w.CertFile, w.KeyFile, ""); err != nil {
			errs = append(errs, fmt.Errorf("listeners.websocket: %w", err))
		}
	}
	if err := cfg.Auth.CheckKeyFiles(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkCertificate loads a listener's key pair and client CA as
// openListeners does.
func checkCertificate(certFile, keyFile, clientCAFile string) error {
	r, err := listener.NewCertReloader(certFile, keyFile)
	if err != nil {
		return err
	}
	_, err = listener.TLSConfig(r, clientCAFile)
	return err
}
