package fs

import (
	"bytes"
	"context"
	"os"
	"testing"
)

func TestSmoke(t *testing.T) {
	for _, be := range []string{"mem", "posix", "uring"} {
		t.Run(be, func(t *testing.T) {
			dir := t.TempDir()
			c, err := Open(context.Background(), dir, WithBackend(be))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Backend() != be {
				t.Fatalf("backend %s, note %s", c.Backend(), c.Features().Note)
			}
			f, err := c.OpenFile("a", os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := c.NewBuffer(8192, BufferOpts{})
			for i := range b.Bytes() {
				b.Bytes()[i] = byte(i * 7)
			}
			w, _ := c.NewRing(RingOpts{Entries: 4, Op: Write})
			reg, _ := b.Region(0, 8192)
			if _, err := w.Prep(Req{File: f, Off: 100, Buf: reg, Tag: 9}); err != nil {
				t.Fatal(err)
			}
			w.Submit()
			out := make([]Completion, 4)
			n, err := w.Wait(context.Background(), out, 1)
			if err != nil || n != 1 || out[0].N != 8192 || out[0].Tag != 9 {
				t.Fatal(n, err, out[0])
			}
			p := make([]byte, 9000)
			k, err := f.ReadAt(p, 0)
			t.Log(k, err)
			if k != 8292 || !bytes.Equal(p[100:8292], b.Bytes()) {
				t.Fatal("mismatch")
			}
		})
	}
}
