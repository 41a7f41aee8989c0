// Command fireflyer is the command-line front end of the Fireflyer SDK.
//
// Every subcommand follows shared conventions (see README.md): results on
// standard output, diagnostics and progress on standard error, exit code 0 on
// success, 1 when a check fails or work cannot complete, 2 for bad usage or
// bad input.
//
// Where it sits: the application (docs/architecture.md), on top of every
// public package; its model and its main job live in cmd/fireflyer/internal
// (dsv3, demo). It links no testing package (TestBinaryDoesNotLinkTesting).
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// Exit codes shared by every subcommand.
const (
	exitOK    = 0 // the command did what was asked
	exitFail  = 1 // it ran, but a check failed or the work could not complete
	exitUsage = 2 // bad usage or bad input
)

// command is one subcommand. run receives the arguments after the
// subcommand's name and returns the process exit code.
type command struct {
	name    string
	summary string
	run     func(args []string, stdin io.Reader, stdout, stderr io.Writer) int
	// hidden keeps the subcommand out of usage and help (the rank role).
	hidden bool
}

var commands = map[string]command{}

// register adds a subcommand; each subcommand lives in its own file and
// registers itself from init.
func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("fireflyer: duplicate subcommand " + c.name)
	}
	commands[c.name] = c
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run dispatches to a subcommand; it is main without os.Exit, for tests.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	if isHelp(name) {
		// Asked-for help goes to standard output, every flag with its
		// default (the conventions in README.md), so that it can be paged or grepped.
		if len(args) > 1 && !isHelp(args[1]) {
			c, ok := commands[args[1]]
			if !ok {
				fmt.Fprintf(stderr, "fireflyer: unknown subcommand %q\n\n", args[1])
				usage(stderr)
				return exitUsage
			}
			return c.run([]string{"-h"}, stdin, stdout, stdout)
		}
		usage(stdout)
		for _, n := range commandNames() {
			fmt.Fprintf(stdout, "\n")
			commands[n].run([]string{"-h"}, stdin, stdout, stdout)
		}
		return exitOK
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "fireflyer: unknown subcommand %q\n\n", name)
		usage(stderr)
		return exitUsage
	}
	return c.run(args[1:], stdin, stdout, stderr)
}

// isHelp reports whether arg asks for help ("help", "-h", "--help",
// "-help"), so that "fireflyer help help" and "fireflyer help -h" print
// the help like "fireflyer help".
func isHelp(arg string) bool {
	switch arg {
	case "help", "-h", "--help", "-help":
		return true
	}
	return false
}

// commandNames returns the registered subcommands in name order, less
// the hidden ones.
func commandNames() []string {
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: fireflyer <subcommand> [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "subcommands:")
	for _, n := range commandNames() {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'fireflyer help <subcommand>' or 'fireflyer <subcommand> -h' for the flags of one subcommand.")
}
