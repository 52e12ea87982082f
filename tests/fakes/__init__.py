"""Fakes of servers our code talks to, for tests only. Each says plainly that it is a fake."""
