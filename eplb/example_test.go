package eplb_test

import (
	"fmt"
	"log"

	"github.com/fireflyer-go/fireflyer/eplb"
)

// The upstream README example: 2 layers of 12 experts in 4 groups, 16 slots
// on 2 nodes × 4 GPUs.
func Example() {
	weight := [][]float32{
		{90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86},
		{20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27},
	}
	cfg := eplb.Config{Replicas: 16, Groups: 4, Nodes: 2, GPUs: 8}
	plan, err := eplb.Rebalance(weight, cfg)
	if err != nil {
		log.Fatal(err)
	}
	m, err := eplb.Evaluate(weight, plan, cfg)
	if err != nil {
		log.Fatal(err)
	}
	for l := range plan.Phy2Log {
		fmt.Printf("layer %d: phy2log %v\n", l, plan.Phy2Log[l])
		fmt.Printf("         max/mean %.3f (before %.3f)\n", m.Imbalance[l], m.BaselineImbalance[l])
	}
	fmt.Println("replicas of expert 1 in layer 0 at slots", plan.Log2Phy[0][1])
	// Output:
	// layer 0: phy2log [5 6 5 7 8 4 3 4 10 9 10 2 0 1 11 1]
	//          max/mean 1.208 (before 1.851)
	// layer 1: phy2log [7 10 6 8 6 11 8 9 2 4 5 1 5 0 3 1]
	//          max/mean 1.242 (before 2.381)
	// replicas of expert 1 in layer 0 at slots [15 13]
}

// Migration-aware re-planning: against the plan in service, the new plan's
// nodes, GPUs and slots are permuted so that the fewest experts move.
func ExampleConfig_previous() {
	cfg := eplb.Config{Replicas: 16, Groups: 4, Nodes: 2, GPUs: 8}
	old, err := eplb.Rebalance([][]float32{{90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86}}, cfg)
	if err != nil {
		log.Fatal(err)
	}
	shifted := [][]float32{{95, 130, 40, 60, 100, 170, 35, 4, 70, 60, 180, 90}}
	fresh, err := eplb.Rebalance(shifted, cfg)
	if err != nil {
		log.Fatal(err)
	}
	cfg.Previous = old
	migrated, err := eplb.Rebalance(shifted, cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("slots changed without migration:", eplb.SlotsChanged(fresh, old))
	fmt.Println("slots changed with migration:   ", eplb.SlotsChanged(migrated, old))
	// Output:
	// slots changed without migration: 16
	// slots changed with migration:    8
}
