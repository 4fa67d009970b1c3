module github.com/metal-images-ts/lz4compat

go 1.22

require github.com/pierrec/lz4/v4 v4.1.22
