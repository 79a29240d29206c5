module github.com/asyncrt/asyncrt

go 1.26.0

require (
	github.com/ianlancetaylor/cgosymbolizer v0.0.0-20260504013507-f4b012c11129
	golang.org/x/sys v0.50.0
)
