module asyncrt.bench/peers/go

go 1.26
