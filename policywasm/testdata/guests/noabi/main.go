// A module that is no hook at all.
package main

func main() {}
