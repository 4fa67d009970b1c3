module github.com/metal-images-ts/rack-hammer

go 1.26.0

require (
	github.com/mholt/archiver v2.1.0+incompatible
	github.com/pierrec/lz4/v4 v4.1.22
	golang.org/x/sys v0.50.0
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/dsnet/compress v0.0.1 // indirect
	github.com/frankban/quicktest v1.14.6 // indirect
	github.com/golang/snappy v1.0.0 // indirect
	github.com/nwaples/rardecode v1.0.0 // indirect
	github.com/pierrec/lz4 v2.6.1+incompatible // indirect
	github.com/ulikunitz/xz v0.5.17 // indirect
)
