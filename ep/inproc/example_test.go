package inproc_test

import (
	"context"
	"fmt"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/inproc"
)

// Three goroutine ranks each put their rank number into rank 0's region
// and signal; rank 0 waits for the three signals and reads the slots.
func ExampleRun() {
	var got []byte
	err := inproc.Run(context.Background(), 3, func(ctx context.Context, t ep.Transport) error {
		reg, err := t.Register(ctx, 64)
		if err != nil {
			return err
		}
		if err := t.Put(ctx, 0, 8+t.Rank(), []byte{byte('a' + t.Rank())}); err != nil {
			return err
		}
		if err := t.Signal(ctx, 0, 0, 1); err != nil {
			return err
		}
		if t.Rank() == 0 {
			if _, err := reg.Wait(ctx, 0, 3); err != nil {
				return err
			}
			got = append(got, reg.Bytes()[8:11]...)
		}
		return t.Barrier(ctx)
	})
	fmt.Println(string(got), err)
	// Output: abc <nil>
}
