package fs_test

import (
	"context"
	"fmt"
	"os"

	"github.com/fireflyer-go/fireflyer/fs"
)

// Punch a hole into a file and link it under a second name (USRBIO
// hf3fs_punchhole and hf3fs_hardlink), on the in-memory backend.
func ExampleFile_PunchHole() {
	c, _ := fs.Open(context.Background(), "", fs.WithBackend("mem"))
	defer c.Close()
	f, _ := c.OpenFile("shard", os.O_RDWR|os.O_CREATE, 0o644)
	f.WriteAt([]byte("0123456789abcdef"), 0)

	f.PunchHole(4, 8) // bytes 4..11 become a hole
	if err := c.Hardlink("shard", "latest"); err != nil {
		fmt.Println(err)
		return
	}
	g, _ := c.OpenFile("latest", os.O_RDONLY, 0)
	got := make([]byte, 16)
	g.ReadAt(got, 0)
	size, _ := g.Size()
	fmt.Printf("%q, size %d\n", got, size)
	// Output:
	// "0123\x00\x00\x00\x00\x00\x00\x00\x00cdef", size 16
}
