// person.go - a Person who ages by one year every second.
//
//	person -name Ada -age 35
//
// Prints "Ada is 35 years old", then every second the new age. The program
// has no checkpoint or dump code of its own: run it under ckshim and its
// whole state (the Person, its goroutines, timers and channels, the Go
// runtime) is saved and restored from outside. See README.md here.
//
// The ageing is spread over goroutines on purpose: a ticker goroutine sends
// ticks on a channel, the main goroutine receives them and asks the
// Person's own goroutine (which owns the age) for a birthday over another
// channel, so a restored process shows timers, channels and goroutines at
// work.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

type Person struct {
	Name string
	Age  int
}

func (p *Person) String() string {
	return fmt.Sprintf("%s is %d years old", p.Name, p.Age)
}

// live owns p: every value received on birthdays adds a year and sends the
// new description back.
func live(p *Person, birthdays <-chan struct{}, said chan<- string) {
	for range birthdays {
		p.Age++
		said <- p.String()
	}
}

func main() {
	name := flag.String("name", "", "the person's name")
	age := flag.Int("age", -1, "the starting age")
	flag.Parse()
	if *name == "" || *age < 0 || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: person -name NAME -age AGE")
		os.Exit(2)
	}

	p := &Person{Name: *name, Age: *age}
	fmt.Println(p)

	birthdays := make(chan struct{})
	said := make(chan string)
	go live(p, birthdays, said)

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for range tick.C {
		birthdays <- struct{}{}
		fmt.Println(<-said)
	}
}
