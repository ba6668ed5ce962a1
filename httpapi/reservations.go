package httpapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/shelfline/inventory/engine"
)

func (s *Server) reserve(c *fiber.Ctx) error {
	var b reserveBody
	store, lines, err := linesRequest(c, &b, func() []lineBody { return b.Lines })
	if err != nil {
		return err
	}
	req := engine.ReserveRequest{Store: store, Lines: lines, Customer: b.Customer}
	if b.TTLSeconds.Set && !b.TTLSeconds.Null {
		// The engine checks the range; a value that would overflow a
		// duration is out of it anyway.
		req.TTL = -1
		if n := b.TTLSeconds.V; n > 0 && n <= math.MaxInt64/int64(time.Second) {
			req.TTL = time.Duration(n) * time.Second
		}
	}
	return s.doWrite(c, func(ctx context.Context, op engine.Op) (result, error) {
		r, err := s.e.Reserve(ctx, req, op)
		if err != nil {
			return result{}, err
		}
		return result{status: http.StatusCreated, body: r.Reservation, loc: "/v1/reservations/" + r.Reservation.ID, replayed: r.Replayed}, nil
	})
}

// reservationFor reads a reservation for the caller: 404 when absent, 403
// when a store token asks for another store's.
func (s *Server) reservationFor(ctx context.Context, cl *caller, id string) (engine.Reservation, error) {
	r, err := s.e.GetReservation(ctx, id)
	if err != nil {
		return r, reservationProblem(id, err)
	}
	if !cl.canRead(r.Store) {
		return r, forbidden(fmt.Sprintf("this token may only use store %s", cl.Store))
	}
	return r, nil
}

// reservationProblem maps what the engine answered about reservation id. An
// id that names no reservation is 404 whatever its shape: the engine refuses
// one that is not of the form this deployment makes (a *ValidationError on
// "reservation id"), but for the client it is simply a reservation that does
// not exist. A reservation that is not held is named in the 409.
func reservationProblem(id string, err error) error {
	var (
		ve  *engine.ValidationError
		nhe *engine.NotHeldError
	)
	switch {
	case errors.Is(err, engine.ErrNotFound), errors.As(err, &ve) && ve.Field == "reservation id":
		if !engine.ValidID(id) {
			// Not echoed: it may be long or odd.
			return problem(http.StatusNotFound, "not-found", "this reservation does not exist")
		}
		return problem(http.StatusNotFound, "not-found", fmt.Sprintf("reservation %s does not exist", id))
	case errors.As(err, &nhe) && engine.ValidID(id):
		return problem(http.StatusConflict, "reservation-not-held", fmt.Sprintf("reservation %s is %s, not held", id, nhe.Status)).
			with("reservation_status", nhe.Status)
	}
	return err
}

func (s *Server) getReservation(c *fiber.Ctx) error {
	id := utils.CopyString(c.Params("id"))
	ctx, cancel := s.ctx(c)
	defer cancel()
	r, err := s.reservationFor(ctx, callerOf(c), id)
	if err != nil {
		return err
	}
	return c.JSON(r)
}

// commit turns a held reservation into a sale; {"fulfilment":"later"} keeps
// the units in committed until a fulfilment hands them over.
func (s *Server) commit(c *fiber.Ctx) error {
	var b commitBody
	return s.finish(c, &b, func(e *engine.Engine, ctx context.Context, id string, op engine.Op) (engine.ReservationResult, error) {
		return e.CommitFulfilment(ctx, id, b.Fulfilment, op)
	})
}

func (s *Server) release(c *fiber.Ctx) error {
	return s.finish(c, &emptyBody{}, (*engine.Engine).Release)
}

// finish runs commit or release; body is what a non-empty request body
// decodes into.
func (s *Server) finish(c *fiber.Ctx, body any, fn func(*engine.Engine, context.Context, string, engine.Op) (engine.ReservationResult, error)) error {
	cl := callerOf(c)
	if cl.Role == RoleReader {
		return forbidden("a reader token may not change stock")
	}
	id := utils.CopyString(c.Params("id"))
	if err := requireJSON(c, true); err != nil {
		return err
	}
	if len(c.Body()) > 0 {
		if err := decodeStrict(c.Body(), body); err != nil {
			return err
		}
	}
	if cl.Role == RoleStore {
		ctx, cancel := s.ctx(c)
		_, err := s.reservationFor(ctx, cl, id)
		cancel()
		if err != nil {
			return err
		}
	}
	return s.doWrite(c, func(ctx context.Context, op engine.Op) (result, error) {
		r, err := fn(s.e, ctx, id, op)
		if err != nil {
			return result{}, reservationProblem(id, err)
		}
		return result{status: http.StatusOK, body: r.Reservation, replayed: r.Replayed}, nil
	})
}
