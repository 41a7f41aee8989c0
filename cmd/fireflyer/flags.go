package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/term"
)

// newFlagSet returns a flag set that reports errors instead of exiting, and
// prints its usage (every flag with its default) to w.
func newFlagSet(name, synopsis string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "usage: fireflyer %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; it returns (exit code, false) when the caller must
// return at once: exitOK for -h, exitUsage for a bad flag.
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	return 0, true
}

// parseNoArgs is parseFlags for a command that takes no positional
// arguments: the first one left after the flags is bad usage, reported on
// stderr as "fireflyer NAME: unexpected argument "ARG"" (NAME the flag
// set's name).
func parseNoArgs(fs *flag.FlagSet, args []string, stderr io.Writer) (int, bool) {
	if code, ok := parseFlags(fs, args); !ok {
		return code, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fireflyer %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitUsage, false
	}
	return 0, true
}

// writeJSON writes v to stdout as indented JSON, the --json output of every
// command; it returns exitOK, or exitFail after "fireflyer NAME: error" on
// stderr when stdout cannot be written.
func writeJSON(stdout, stderr io.Writer, name string, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "fireflyer %s: %v\n", name, err)
		return exitFail
	}
	return exitOK
}

// checkOutFile reports, before any work, an output FILE argument that names
// an existing directory, or whose directory is missing or not a directory
// (bad input, exit 2), as "--flag PATH: ...". "" and "-" (standard output)
// pass; a path that cannot be created for another reason (permissions, a
// full disk) is found when it is written (exit 1).
func checkOutFile(flag, path string) error {
	if path == "" || path == "-" {
		return nil
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("--%s %s: is a directory, want a file name", flag, path)
	}
	// The file is created only after the work, so a directory that is not
	// there is caught now rather than after a long run.
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil {
		return fmt.Errorf("--%s %s: directory %s: %w", flag, path, dir, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("--%s %s: %s is not a directory", flag, path, dir)
	}
	return nil
}

// isTerminal reports whether s (a subcommand's stdin, stdout or stderr) is
// a terminal: progress bars are drawn only then, and data is never awaited
// from one.
func isTerminal(s any) bool {
	f, ok := s.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// onlyWith reports the first of the flags names given on the command line
// while on is false (their mode, named by mode, is off), where they would
// do nothing: "--NAME has no effect without MODE", a usage error.
func onlyWith(fs *flag.FlagSet, on bool, mode string, names ...string) error {
	if on {
		return nil
	}
	var err error
	fs.Visit(func(f *flag.Flag) {
		if err == nil && slices.Contains(names, f.Name) {
			err = fmt.Errorf("--%s has no effect without %s", f.Name, mode)
		}
	})
	return err
}
