# Build a static fhirbox binary, then run it on a minimal image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/fhirbox ./cmd/fhirbox

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/fhirbox /fhirbox
# Without FHIRBOX_DATABASE_URL, the SQLite file goes to ./data: a directory the nonroot
# user may create.
WORKDIR /home/nonroot
EXPOSE 8080
ENTRYPOINT ["/fhirbox"]
CMD ["serve"]
