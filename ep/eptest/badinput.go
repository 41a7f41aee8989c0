package eptest

func badInputCases() []Case { return nil }
