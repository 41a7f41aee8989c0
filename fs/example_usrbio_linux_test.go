//go:build linux

package fs_test

import (
	"context"
	"fmt"
	"os"

	"github.com/fireflyer-go/fireflyer/fs"
)

// Attach a shared Buffer by id, as a second process would (USRBIO
// hf3fs_iovopen): both sides see the same memory.
func ExampleClient_OpenBuffer() {
	dir, _ := os.MkdirTemp("", "fs-share")
	defer os.RemoveAll(dir)
	c, _ := fs.Open(context.Background(), dir, fs.WithBackend("posix"))
	defer c.Close()

	b, err := c.NewBuffer(1<<16, fs.BufferOpts{Shared: true}) // a 0600 file under /dev/shm
	if err != nil {
		fmt.Println(err)
		return
	}
	id := b.ID() // what the other process needs

	peer, _ := fs.Open(context.Background(), dir, fs.WithBackend("posix")) // in the other process
	defer peer.Close()
	pb, err := peer.OpenBuffer(id, fs.BufferOpts{})
	if err != nil {
		fmt.Println(err)
		return
	}
	copy(b.Bytes(), "written by the creator")
	fmt.Printf("%s, %d bytes\n", pb.Bytes()[:22], pb.Len())
	// Output:
	// written by the creator, 65536 bytes
}
