-- profile_guard--1.2.sql: assembled by the Makefile from the parts in sql/ext, in name order

\echo Use "CREATE EXTENSION profile_guard" to load this file. \quit
