package fs_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/fireflyer-go/fireflyer/fs"
)

// Write two blocks through a write ring, read them back through a read
// ring, and see a short read at end of file.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "fs-example")
	defer os.RemoveAll(dir)

	c, err := fs.Open(ctx, dir) // auto: io_uring if allowed, else posix
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	f, _ := c.OpenFile("data", os.O_RDWR|os.O_CREATE, 0o644)
	buf, _ := c.NewBuffer(8192, fs.BufferOpts{BlockSize: 4096})
	copy(buf.Bytes(), "hello")
	copy(buf.Bytes()[4096:], "world")

	w, _ := c.NewRing(fs.RingOpts{Entries: 8, Op: fs.Write})
	for i := range 2 {
		reg, _ := buf.Region(i*4096, 4096)
		w.Prep(fs.Req{File: f, Off: int64(i) * 4096, Buf: reg, Tag: uint64(10 + i)})
	}
	w.Submit()
	out := make([]fs.Completion, 8)
	n, _ := w.Wait(ctx, out, 2)
	fmt.Println("writes completed:", n)

	clear(buf.Bytes())
	r, _ := c.NewRing(fs.RingOpts{Entries: 8, Op: fs.Read})
	reg, _ := buf.Region(4096, 4096)
	r.Prep(fs.Req{File: f, Off: 4096 + 2, Buf: reg, Tag: 7}) // runs 2 bytes past the end
	r.Submit()
	r.Wait(ctx, out, 1)
	fmt.Printf("tag %d: %d bytes, %q\n", out[0].Tag, out[0].N, buf.Bytes()[4096:4099])

	_, err = r.Wait(ctx, out, 1) // nothing in flight: fails fast
	fmt.Println(errors.Is(err, fs.ErrWouldStall))
	// Output:
	// writes completed: 2
	// tag 7: 4094 bytes, "rld"
	// true
}
