module github.com/metal-images-ts/tools/firewall

go 1.26.8
