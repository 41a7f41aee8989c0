package eplbio_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/fireflyer-go/fireflyer/eplb"
	"github.com/fireflyer-go/fireflyer/eplb/eplbio"
)

// Expert loads as a CSV file (one row per layer), read and balanced.
func ExampleParseWeights() {
	csv := "90,132,40,61,104,165,39,4,73,56,183,86\n"
	w, err := eplbio.ParseWeights(strings.NewReader(csv))
	if err != nil {
		log.Fatal(err)
	}
	plan, err := eplb.Rebalance(w, eplb.Config{Replicas: 16, Groups: 4, Nodes: 2, GPUs: 8})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(w), "layer of", len(w[0]), "experts")
	fmt.Println("phy2log", plan.Phy2Log[0])
	// Output:
	// 1 layer of 12 experts
	// phy2log [5 6 5 7 8 4 3 4 10 9 10 2 0 1 11 1]
}
