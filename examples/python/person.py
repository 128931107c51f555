#!/usr/bin/env python3
"""person.py - a Person who ages by one year every second.

    python3 person.py --name "Ada" --age 35

Prints "Ada is 35 years old", then every second the new age. The program
has no checkpoint or dump code of its own: run it under ckshim and its whole
state (the Person object, the loop, the interpreter) is saved and restored
from outside. See README.md in this directory.
"""

import argparse
import sys
import time


class Person:
    def __init__(self, name, age):
        self.name = name
        self.age = age

    def birthday(self):
        self.age += 1

    def __str__(self):
        return f"{self.name} is {self.age} years old"


def main():
    parser = argparse.ArgumentParser(description="A Person who ages by one year every second.")
    parser.add_argument("--name", required=True, help="the person's name")
    parser.add_argument("--age", type=int, required=True, help="the starting age")
    args = parser.parse_args()

    person = Person(args.name, args.age)
    print(person, flush=True)
    try:
        while True:
            time.sleep(1)
            person.birthday()
            print(person, flush=True)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
